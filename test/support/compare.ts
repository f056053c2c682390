import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import type { RedisCluster, RedisServer } from '../harness';
import { readKeyspace, type LiveKey } from './keyspace';

/** Every key of a server or cluster (all its masters), by db; our checkpoint keys left out. */
export async function keyspaceOf(target: RedisServer | RedisCluster, dbs: number[] = [0]): Promise<Keyspace> {
  const servers = 'seeds' in target ? await target.masters() : [target];
  const out: Record<number, Record<string, LiveKey>> = {};
  for (const db of dbs) {
    out[db] = {};
    for (const s of servers) {
      const c: Redis = s.client();
      try {
        for (const [k, v] of Object.entries(await readKeyspace(c, db))) if (!k.startsWith('redis-sync:')) out[db][k] = v;
      } finally {
        c.disconnect();
      }
    }
  }
  readFrom.set(out, target);
  return out;
}

/** The two keyspaces are equal: same keys, types and values; TTLs within `ttlToleranceMs`. */
export function assertSameKeyspace(actual: Record<number, Record<string, LiveKey>>, expected: Record<number, Record<string, LiveKey>>, ttlToleranceMs = 2000): void {
  for (const db of Object.keys(expected)) {
    const a = actual[Number(db)] ?? {};
    const e = expected[Number(db)];
    const missing = Object.keys(e).filter((k) => !(k in a));
    const extra = Object.keys(a).filter((k) => !(k in e));
    assert.deepEqual({ missing: missing.slice(0, 20), extra: extra.slice(0, 20) }, { missing: [], extra: [] }, `db ${db}: key sets differ (${missing.length} missing, ${extra.length} extra)`);
    for (const k of Object.keys(e)) {
      assert.equal(a[k].type, e[k].type, `db ${db} ${k}: type`);
      assert.deepEqual(a[k].value, e[k].value, `db ${db} ${k}: value`);
      const ea = a[k].expire_ms;
      const ee = e[k].expire_ms;
      assert.equal(ea === null, ee === null, `db ${db} ${k}: TTL presence (${ea} vs ${ee})`);
      if (ea !== null && ee !== null) assert.ok(Math.abs(ea - ee) <= ttlToleranceMs, `db ${db} ${k}: TTL ${ea} vs ${ee}`);
      // field TTLs where both servers have them (a destination before 7.4 drops them, as the README says)
      if (a[k].field_expire_ms !== undefined && e[k].field_expire_ms !== undefined) assert.deepEqual(a[k].field_expire_ms, e[k].field_expire_ms, `db ${db} ${k}: field TTLs`);
    }
  }
}

export type Keyspace = Record<number, Record<string, LiveKey>>;

/** The server or cluster each keyspace was read from by keyspaceOf (not one a test derived from it). */
const readFrom = new WeakMap<Keyspace, RedisServer | RedisCluster>();

/**
 * The function libraries (FUNCTION LIST WITHCODE) of each master, each library as one
 * string, in name order; null for a server before 7.0, which has none.
 */
async function librariesOf(target: RedisServer | RedisCluster): Promise<string[][] | null> {
  const out: string[][] = [];
  for (const s of 'seeds' in target ? await target.masters() : [target]) {
    let reply: unknown;
    try {
      reply = await s.command('FUNCTION', 'LIST', 'WITHCODE');
    } catch (err) {
      if (/unknown command/i.test((err as Error).message)) return null;
      throw err;
    }
    const libraries = (reply as unknown[][]).map((lib) => {
      const l = fields(lib);
      // a server lists a library's functions in the order of its hash table, which differs between servers
      const functions = (l.functions as unknown[][]).map((f) => fields(f)).map((f) => JSON.stringify({ ...f, flags: (f.flags as string[]).slice().sort() }));
      return JSON.stringify({ ...l, functions: functions.sort() });
    });
    out.push(libraries.sort());
  }
  return out;
}

/** A reply of alternating field names and values, as an object. */
function fields(reply: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) o[String(reply[i])] = reply[i + 1];
  return o;
}

/**
 * The destination holds the source's function libraries, each of its masters all of them
 * (the sink loads them on every master), same code; nothing to compare where either side is
 * older than 7.0.
 */
export async function assertSameFunctions(source: RedisServer | RedisCluster, destination: RedisServer | RedisCluster): Promise<void> {
  const want = await librariesOf(source);
  const got = await librariesOf(destination);
  if (want === null || got === null) return;
  const expected = [...new Set(want.flat())].sort();
  for (const [i, libraries] of got.entries()) assert.deepEqual(libraries, expected, `function libraries of destination master ${i + 1} of ${got.length}`);
}

export interface ConvergeOptions {
  /** How long the destination may take. Default 60 s. */
  ms?: number;
  /** What the flow reported as failed, if anything: polling stops at once, with it in the message. */
  failure?: () => string | null;
  /** Between two polls. Default 300 ms. */
  pollMs?: number;
}

/**
 * Polls until the destination equals what is expected of it (both read anew each time, the
 * source first), and fails with the last difference once `ms` is up or the flow failed. Where
 * both keyspaces are as keyspaceOf read them, the servers' function libraries must match too.
 */
export async function converge(expected: () => Promise<Keyspace>, actual: () => Promise<Keyspace>, opts: ConvergeOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.ms ?? 60_000);
  for (;;) {
    const want = await expected();
    try {
      const got = await actual();
      assertSameKeyspace(got, want);
      const source = readFrom.get(want);
      const destination = readFrom.get(got);
      if (source !== undefined && destination !== undefined) await assertSameFunctions(source, destination);
      return;
    } catch (err) {
      const failure = opts.failure?.() ?? null;
      if (Date.now() > deadline || failure !== null) {
        throw new Error(`the destination did not converge: ${(err as Error).message}${failure === null ? '' : `\n${failure}`}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 300));
    }
  }
}
