import type Redis from 'ioredis';
import { jsonBytes, scoreText } from '../../lib/rdb/json';
import type { ExpectedKey } from './fixtures';

/** A key as a live server reports it, in the fixture JSON schema (see test/fixtures/rdb/README.md). */
export interface LiveKey {
  type: string;
  expire_ms: number | null;
  value: unknown;
  /** A hash's field TTLs, absolute ms by field: {} for none; absent where the server has no field TTLs (before 7.4). */
  field_expire_ms?: Record<string, number>;
}

/** Commands a server lacks (by client), learnt from its first refusal: older servers are read with what they have. */
const missing = new WeakMap<Redis, Set<string>>();

/** The reply, or undefined where the server does not know the command. */
async function ifKnown<T>(c: Redis, name: string, run: () => Promise<T>): Promise<T | undefined> {
  const gone = missing.get(c) ?? new Set<string>();
  missing.set(c, gone);
  if (gone.has(name)) return undefined;
  try {
    return await run();
  } catch (err) {
    if (!/unknown command/i.test((err as Error).message)) throw err;
    gone.add(name);
    return undefined;
  }
}

/** Absolute expiry in ms; PEXPIRETIME where the server has it (7.0+), else now + PTTL (exact to a few ms). */
async function expireAt(c: Redis, key: Buffer, pttl: number): Promise<number> {
  const at = await ifKnown(c, 'PEXPIRETIME', async () => Number(await c.call('PEXPIRETIME', key)));
  return at ?? Date.now() + pttl;
}

async function fieldTtls(c: Redis, key: Buffer, fieldNames: Buffer[]): Promise<Record<string, number> | undefined> {
  if (fieldNames.length === 0) return {};
  const ttls = await ifKnown(c, 'HPEXPIRETIME', async () => (await c.callBuffer('HPEXPIRETIME', key, 'FIELDS', fieldNames.length, ...fieldNames)) as number[]);
  if (ttls === undefined) return undefined;
  const out: Record<string, number> = {};
  fieldNames.forEach((f, i) => {
    if (Number(ttls[i]) > 0) out[jsonBytes(f)] = Number(ttls[i]);
  });
  return out;
}

type Reply = Buffer | Buffer[] | number | null | Reply[];

/** Pairs from a flat RESP2 array or the nested pairs RESP3 gives for WITHSCORES. */
function pairs(reply: Array<Buffer | Buffer[]>): Array<[Buffer, Buffer]> {
  const flat = reply.flat();
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** XINFO replies: maps, which the client hands over as flat field/value arrays. */
function fields(flat: Reply[]): Map<string, Reply> {
  const m = new Map<string, Reply>();
  for (let i = 0; i < flat.length; i += 2) m.set((flat[i] as Buffer).toString(), flat[i + 1]);
  return m;
}

async function readStream(c: Redis, key: Buffer): Promise<unknown> {
  const entries = (await c.callBuffer('XRANGE', key, '-', '+')) as Array<[Buffer, Buffer[]]>;
  const info = fields((await c.callBuffer('XINFO', 'STREAM', key)) as Reply[]);
  const groups = [];
  for (const g of (await c.callBuffer('XINFO', 'GROUPS', key)) as Reply[][]) {
    const gi = fields(g);
    const name = gi.get('name') as Buffer;
    const pending = (await c.callBuffer('XPENDING', key, name, '-', '+', 1_000_000)) as Array<[Buffer, Buffer, number, number]>;
    const consumers = [];
    for (const cr of (await c.callBuffer('XINFO', 'CONSUMERS', key, name)) as Reply[][]) {
      const cname = fields(cr).get('name') as Buffer;
      consumers.push({ name: jsonBytes(cname), pending: pending.filter((p) => p[1].equals(cname)).map((p) => p[0].toString()) });
    }
    groups.push({
      name: jsonBytes(name),
      last_delivered_id: (gi.get('last-delivered-id') as Buffer).toString(),
      pending: pending.map((p) => [p[0].toString(), jsonBytes(p[1]), p[3]]),
      consumers: consumers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    });
  }
  return {
    length: Number(info.get('length')),
    entries: entries.map(([id, f]) => [id.toString(), f.map(jsonBytes)]),
    last_id: (info.get('last-generated-id') as Buffer).toString(),
    groups: groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

/**
 * Reads one key with the plain read commands (binary-safe), as the fixture JSON has it. A key
 * that expires while it is read (the live tests write short TTLs) reads as gone: null (Redis
 * keeps no empty collections, so an empty read means the key went away).
 */
export async function readKey(c: Redis, key: Buffer): Promise<LiveKey | null> {
  const type = ((await c.callBuffer('TYPE', key)) as Buffer).toString();
  if (type === 'none') return null;
  const pttl = Number(await c.call('PTTL', key));
  const expire_ms = pttl < 0 ? null : await expireAt(c, key, pttl);
  if (pttl === -2 || expire_ms === -2) return null;
  let value: unknown;
  let field_expire_ms: Record<string, number> | undefined;
  switch (type) {
    case 'string': {
      const v = (await c.callBuffer('GET', key)) as Buffer | null;
      if (v === null) return null;
      value = jsonBytes(v);
      break;
    }
    case 'list':
      value = ((await c.callBuffer('LRANGE', key, 0, -1)) as Buffer[]).map(jsonBytes);
      break;
    case 'set':
      value = ((await c.callBuffer('SMEMBERS', key)) as Buffer[]).sort(Buffer.compare).map(jsonBytes);
      break;
    case 'zset':
      value = pairs((await c.callBuffer('ZRANGE', key, 0, -1, 'WITHSCORES')) as Buffer[]).map(([m, s]) => [jsonBytes(m), scoreText(Number(s.toString().replace('inf', 'Infinity')))]);
      break;
    case 'hash': {
      const fv = pairs((await c.callBuffer('HGETALL', key)) as Buffer[]);
      value = Object.fromEntries(fv.map(([f, v]) => [jsonBytes(f), jsonBytes(v)]));
      field_expire_ms = await fieldTtls(c, key, fv.map(([f]) => f));
      break;
    }
    case 'stream':
      value = await readStream(c, key);
      break;
    default:
      throw new Error(`readKey: type ${type} of key ${jsonBytes(key)} is not handled`);
  }
  if (Array.isArray(value) ? value.length === 0 : typeof value === 'object' && value !== null && !('entries' in value) && Object.keys(value).length === 0) return null;
  return field_expire_ms === undefined ? { type, expire_ms, value } : { type, expire_ms, value, field_expire_ms };
}

/** Every key of one db, by its JSON name. */
export async function readKeyspace(c: Redis, db = 0): Promise<Record<string, LiveKey>> {
  await c.select(db);
  const out: Record<string, LiveKey> = {};
  let cursor = '0';
  do {
    const [next, keys] = (await c.callBuffer('SCAN', cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
    cursor = next.toString();
    for (const k of keys) {
      const v = await readKey(c, k);
      if (v) out[jsonBytes(k)] = v;
    }
  } while (cursor !== '0');
  return out;
}

/** The live reading has no stream metadata beyond what XINFO shows; compare that part. */
export function comparable(k: ExpectedKey | LiveKey): unknown {
  if (k.type === 'zset') return { type: k.type, expire_ms: k.expire_ms, value: (k.value as Array<[string, string]>).map(([m, s]) => [m, Number(s.replace('inf', 'Infinity'))]) };
  if (k.type !== 'stream') return { type: k.type, expire_ms: k.expire_ms, value: k.value };
  const v = k.value as {
    length: number;
    entries: unknown[];
    last_id: string;
    groups: Array<{ name: string; last_delivered_id: string; pending: Array<[string, string | null, number, number?]>; consumers: Array<{ name: string; pending: string[] }> }>;
  };
  return {
    type: k.type,
    expire_ms: k.expire_ms,
    length: v.length,
    entries: v.entries,
    last_id: v.last_id,
    groups: v.groups.map((g) => ({
      name: g.name,
      last_delivered_id: g.last_delivered_id,
      // live: [id, consumer, count]; fixture: [id, consumer, time, count]
      pending: g.pending.map((p) => [p[0], p[1], p.length === 4 ? p[3] : p[2]]),
      consumers: g.consumers.map((c) => ({ name: c.name, pending: c.pending })),
    })),
  };
}
