/**
 * The comparison of given keys, one read of each side: the piece a verification runs over and
 * over, and what a cutover checks the last written keys with.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RdbError } from '../rdb/errors';
import type { KeyMapping } from './mapping';
import type { DbKey, KeyRead, VerifySide } from './side';
import { compareValues, typeOfPayload, type DifferenceReason } from './values';

export interface CompareOptions {
  /** What the flow does to keys (op filter, renames); none: a key has the same db and name on both sides. */
  mapping?: KeyMapping;
  /** How far the two expiry times of a key (or of a hash field) may be apart. Default 1000 ms. */
  ttlToleranceMs?: number;
  /** Told the type of each key read (the source's, else the destination's; 'none' for a key neither has any more). */
  onCompared?: (type: string) => void;
  /**
   * For keys a live sync is still writing: read the source, wait this long (the sync's applied
   * lag) before reading the destination, and read the source again where they differ. A key
   * differs only if the destination holds neither source value: it may lag behind, but must
   * have caught up with what the source held this long ago. Default 0: both read at once.
   */
  settleMs?: number;
}

export interface KeyDifference {
  /** The source key (for an extra key, the destination's when no source key maps to it). */
  db: number;
  key: Buffer;
  /** Where the flow puts it in the destination. */
  destinationDb: number;
  destinationKey: Buffer;
  reason: DifferenceReason;
  /** The type of the key on the side that has it (the source's when both do). */
  type: string;
  /** What each side holds where they part, short: a type, a value, an expiry, 'none' for no key. */
  source: string;
  destination: string;
}

export const DEFAULT_TTL_TOLERANCE_MS = 1000;

/**
 * Compares each source key with where the flow puts it in the destination; the differences,
 * in the order of `keys`. Keys the flow does not sync (filtered out) are left out. A key
 * neither side has is equal (it was deleted meanwhile).
 */
export async function compareKeys(source: VerifySide, destination: VerifySide, keys: readonly DbKey[], options: CompareOptions = {}): Promise<KeyDifference[]> {
  const mapped = options.mapping === undefined ? keys : options.mapping.forward(keys);
  const from: DbKey[] = [];
  const to: DbKey[] = [];
  mapped.forEach((m, i) => {
    if (m === null) return;
    from.push(keys[i]);
    to.push(m);
  });
  const settleMs = options.settleMs ?? 0;
  const [a, b] = settleMs > 0 ? await readSettled(source, destination, from, to, settleMs) : await Promise.all([source.read(from), destination.read(to)]);
  const tolerance = options.ttlToleranceMs ?? DEFAULT_TTL_TOLERANCE_MS;
  const differing: Array<{ i: number; d: Difference }> = [];
  for (let i = 0; i < from.length; i++) {
    const d = compareReads(a[i], b[i], tolerance);
    const payload = a[i].payload ?? b[i].payload;
    options.onCompared?.(payload === null ? 'none' : typeOfPayload(payload));
    if (d !== null) differing.push({ i, d });
  }
  let confirmed = differing;
  if (settleMs > 0 && differing.length > 0) {
    const again = await source.read(differing.map(({ i }) => from[i]));
    confirmed = differing.filter(({ i }, j) => compareReads(again[j], b[i], tolerance) !== null);
  }
  return confirmed.map(({ i, d }) => ({ db: from[i].db, key: from[i].key, destinationDb: to[i].db, destinationKey: to[i].key, ...d }));
}

async function readSettled(source: VerifySide, destination: VerifySide, from: DbKey[], to: DbKey[], settleMs: number): Promise<[KeyRead[], KeyRead[]]> {
  const a = await source.read(from);
  await sleep(settleMs);
  return [a, await destination.read(to)];
}

type Difference = Pick<KeyDifference, 'reason' | 'type' | 'source' | 'destination'>;

function expiry(ms: number | null): string {
  return ms === null ? 'no TTL' : `expires ${new Date(ms).toISOString()}`;
}

/** null when both reads hold the same key (or neither has it). */
export function compareReads(a: KeyRead, b: KeyRead, ttlToleranceMs: number): Difference | null {
  if (a.error !== null || b.error !== null) return { reason: 'unreadable', type: 'unknown', source: a.error ?? '', destination: b.error ?? '' };
  if (a.payload === null && b.payload === null) return null;
  if (b.payload === null) return { reason: 'missing', type: typeOfPayload(a.payload as Buffer), source: typeOfPayload(a.payload as Buffer), destination: 'none' };
  if (a.payload === null) return { reason: 'extra', type: typeOfPayload(b.payload), source: 'none', destination: typeOfPayload(b.payload) };
  const type = typeOfPayload(a.payload);
  const other = typeOfPayload(b.payload);
  if (type !== other) return { reason: 'type', type, source: type, destination: other };
  try {
    const d = compareValues(a.payload, b.payload, ttlToleranceMs);
    if (d !== null) return { type, ...d };
  } catch (err) {
    if (!(err instanceof RdbError)) throw err;
    return { reason: 'unreadable', type, source: '', destination: `the DUMP payloads could not be compared: ${err.message}` };
  }
  const ta = a.expireMs;
  const tb = b.expireMs;
  if ((ta === null) !== (tb === null) || (ta !== null && tb !== null && Math.abs(ta - tb) > ttlToleranceMs)) return { reason: 'ttl', type, source: expiry(ta), destination: expiry(tb) };
  return null;
}
