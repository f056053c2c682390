/**
 * What the scan source needs of `notify-keyspace-events`, and how it reads the notifications.
 * Flags as notify.c (keyspaceEventsStringToFlags) knows them: K publishes on
 * `__keyspace@<db>__:<key>`; A stands for the classes g$lshzxet (generic, string, list, set,
 * hash, zset, expired, evicted, stream), each of which must be on for its writes to be seen.
 */

/** What the scan source asks users to set: the keyspace channel, every event class. */
export const KEYSPACE_EVENTS = 'KA';

/** The classes A stands for (notify.c, NOTIFY_ALL, without the module class 'd' of 7.0+). */
const CLASSES = 'g$lshzxet';

/** The PSUBSCRIBE pattern of every key's channel in every db. */
export const KEYSPACE_PATTERN = '__keyspace@*__:*';

/** The flags of `current` the scan source still needs ('' when none): K and every class A stands for. */
export function missingKeyspaceEvents(current: string): string {
  let missing = current.includes('K') ? '' : 'K';
  if (!current.includes('A')) for (const c of CLASSES) if (!current.includes(c)) missing += c;
  return missing;
}

/** `current` with what is missing added, as it would be written to CONFIG SET or a provider's console. */
export function withKeyspaceEvents(current: string): string {
  const missing = missingKeyspaceEvents(current);
  if (missing === '') return current;
  // the classes already set are all in A: KA plus what A leaves out (E, n, m, d) says it shortest
  const others = [...current].filter((c) => !CLASSES.includes(c) && c !== 'A' && c !== 'K').join('');
  return `${KEYSPACE_EVENTS}${others}`;
}

/** What a user must do where notify-keyspace-events lacks flags, in the server's or in the provider's settings. */
export function keyspaceEventsRemedy(current: string | null): string {
  const target = current === null ? KEYSPACE_EVENTS : withKeyspaceEvents(current);
  return (
    `set notify-keyspace-events to "${target}" on every master: CONFIG SET notify-keyspace-events ${target} (and in redis.conf), ` +
    `or on a managed service in its console (ElastiCache: the parameter group's notify-keyspace-events; Azure Cache for Redis: Advanced settings, Keyspace notifications; ` +
    `Memorystore: the instance's Redis configuration notify-keyspace-events; Alibaba Cloud: the instance's parameter settings)`
  );
}

const PREFIX = Buffer.from('__keyspace@');
const SEPARATOR = Buffer.from('__:');

/** The db and key of a keyspace channel name (`__keyspace@<db>__:<key>`, the key any bytes); null for another channel. */
export function parseKeyspaceChannel(channel: Buffer): { db: number; key: Buffer } | null {
  if (channel.length < PREFIX.length + SEPARATOR.length + 1 || !channel.subarray(0, PREFIX.length).equals(PREFIX)) return null;
  const end = channel.indexOf(SEPARATOR, PREFIX.length);
  if (end < 0) return null;
  const db = Number(channel.subarray(PREFIX.length, end).toString('latin1'));
  if (!Number.isSafeInteger(db) || db < 0) return null;
  return { db, key: channel.subarray(end + SEPARATOR.length) };
}
