/**
 * The 3-master destination cluster of bench/e2e.ts's cluster phases (issue 15), and the load of
 * its cross-slot phase. The cluster comes from the test harness (test/harness/cluster.ts:
 * stock redis-server, `redis-cli --cluster create`, no replicas).
 */
import net from 'node:net';
import Redis from 'ioredis';
import { hashTagForSlot, slotOf } from '../../lib/cluster/slots';
import { startCluster, type RedisCluster, type RedisServer } from '../../test/harness';
import type { FlowNode } from './e2e-node-red';

const SLOT_COUNT = 16384;

export async function emptyCluster(): Promise<RedisCluster> {
  return startCluster({ masters: 3, replicas: 0 });
}

/** Which master serves each slot (CLUSTER SLOTS of the first master). */
async function slotOwners(cluster: RedisCluster): Promise<{ masters: RedisServer[]; owner: Uint8Array }> {
  const masters = await cluster.masters();
  const owner = new Uint8Array(SLOT_COUNT);
  const ranges = (await masters[0].command('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  for (const [start, end, [, port]] of ranges) {
    const i = masters.findIndex((m) => m.port === Number(port));
    for (let s = start; s <= end; s++) owner[s] = i;
  }
  return { masters, owner };
}

const counterClients = new Set<Redis>();

/** Disconnects the counters a failed phase left open. */
export function closeCounters(): void {
  for (const c of counterClients) c.disconnect();
  counterClients.clear();
}

/**
 * Counts keys of one name per slot (`<prefix>{<tag of the slot>}`) on a cluster, one pipeline of
 * EXISTS per master (a multi-key EXISTS must stay in one slot): the exactly-once sink's
 * checkpoint keys (lib/sink/checkpoints.ts names them `redis-sync:ckpt:{tag}`, one per slot it
 * applied to), or the cross-slot phase's end markers.
 */
export async function perSlotCounter(cluster: RedisCluster, prefix: string): Promise<{ count: () => Promise<number>; masters: RedisServer[]; close: () => void }> {
  const { masters, owner } = await slotOwners(cluster);
  const names: string[][] = masters.map(() => []);
  for (let s = 0; s < SLOT_COUNT; s++) names[owner[s]].push(`${prefix}{${hashTagForSlot(s)}}`);
  const clients = masters.map((m) => {
    const c = new Redis({ host: m.host, port: m.port, maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    counterClients.add(c);
    return c;
  });
  return {
    masters,
    count: async () => {
      const counts = await Promise.all(
        clients.map(async (c, i) => {
          const p = c.pipeline();
          for (const k of names[i]) p.exists(k);
          const res = (await p.exec()) ?? [];
          return res.reduce((a, [err, n]) => a + (err ? 0 : Number(n)), 0);
        }),
      );
      return counts.reduce((a, n) => a + n, 0);
    },
    close: () => {
      for (const c of clients) {
        c.disconnect();
        counterClients.delete(c);
      }
    },
  };
}

/** Keys on the cluster outside the sync's own `redis-sync:*` (checkpoint and staging keys, lib/sink), by SCAN: for after the flow is undeployed. */
export async function clusterKeysBesidesOurs(masters: RedisServer[]): Promise<number> {
  let n = 0;
  for (const m of masters) {
    let ours = 0;
    let cursor = '0';
    do {
      const [next, keys] = (await m.command('SCAN', cursor, 'MATCH', 'redis-sync:*', 'COUNT', 10000)) as [string, string[]];
      cursor = next;
      ours += keys.length;
    } while (cursor !== '0');
    n += Number(await m.command('DBSIZE')) - ours;
  }
  return n;
}

/** User keys on the cluster: DBSIZE of every master minus our checkpoint keys (counted only once DBSIZE could be enough). */
export async function clusterUserKeys(masters: RedisServer[], checkpoints: () => Promise<number>, want: number): Promise<number> {
  const sizes = await Promise.all(masters.map((m) => m.command('DBSIZE')));
  const all = sizes.reduce((a: number, n) => a + Number(n), 0);
  return all < want ? all - 1 : all - (await checkpoints());
}

export function clusterFlow(tag: string, srcPort: number, seeds: string): FlowNode[] {
  const sinks = [0, 1, 2].map((i) => `sink-${tag}-${i}`);
  return [
    { id: 'e2e-tab', type: 'tab', label: 'e2e bench' },
    { id: `srcEp-${tag}`, type: 'redis-endpoint', name: 'source', mode: 'standalone', host: '127.0.0.1', port: String(srcPort), seeds: '' },
    { id: `dstEp-${tag}`, type: 'redis-endpoint', name: 'destination', mode: 'cluster', host: '', port: '', seeds },
    {
      id: `src-${tag}`, type: 'redis-replica-source', z: 'e2e-tab', name: '', endpoint: `srcEp-${tag}`,
      mode: 'full+incremental', startOn: 'deploy', shards: 'all', preferReplica: false, decodeValues: false,
      batchOps: 1000, batchLatencyMs: 20, bigKeyMb: 1, spoolDir: '', spoolMaxMb: 4096,
      wires: [[`router-${tag}`], []],
    },
    { id: `router-${tag}`, type: 'redis-slot-router', z: 'e2e-tab', name: '', partitions: 3, outputs: 3, wires: sinks.map((s) => [s]) },
    ...sinks.map((id) => ({ id, type: 'redis-cluster-sink', z: 'e2e-tab', name: '', endpoint: `dstEp-${tag}`, conflict: 'ignore', exactlyOnce: true, restoreMaxMb: 64, wires: [[]] })),
  ];
}

// ---- the cross-slot load ----

function resp(args: string[]): string {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

/**
 * The keys the moves work on, written into the source before the flow is deployed: per pair j,
 * a list `xl:j:a` and a set `xs:j:a` with enough elements for every LMOVE/SMOVE of the run, and a
 * string `xr:j:0` that RENAME walks through `xr:j:1`, `xr:j:2`, … The two sides of every move
 * are in different slots (checked).
 */
export class CrossSlotLoad {
  private readonly smoved: number[];
  private readonly renamed: number[];
  private readonly lmoved: number[];
  private n = 0;

  constructor(
    readonly pairs: number,
    readonly elements: number,
  ) {
    this.smoved = new Array<number>(pairs).fill(0);
    this.renamed = new Array<number>(pairs).fill(0);
    this.lmoved = new Array<number>(pairs).fill(0);
  }

  /** RESP of the preparation: 3 keys per pair. */
  preparation(): string[] {
    const out: string[] = [];
    const items = Array.from({ length: this.elements }, (_, i) => `m${i}`);
    for (let j = 0; j < this.pairs; j++) {
      if (slotOf(`xl:${j}:a`) === slotOf(`xl:${j}:b`) || slotOf(`xs:${j}:a`) === slotOf(`xs:${j}:b`)) throw new Error(`pair ${j}: both sides in one slot`);
      out.push(resp(['RPUSH', `xl:${j}:a`, ...items]), resp(['SADD', `xs:${j}:a`, ...items]), resp(['SET', `xr:${j}:0`, 'v']));
    }
    return out;
  }

  /**
   * The next op: INCR/RPUSH/HSET on 100k keys in turn; with `crossEvery` > 0, every crossEvery-th
   * op is instead a move between two slots, LMOVE, SMOVE and RENAME in turn.
   */
  next(crossEvery: number): string {
    const i = this.n++;
    const r = (i * 7919) % 100_000;
    if (crossEvery > 0 && i % crossEvery === crossEvery - 1) {
      const m = Math.floor(i / crossEvery);
      const j = Math.floor(m / 3) % this.pairs;
      switch (m % 3) {
        case 0:
          if (this.lmoved[j]++ >= this.elements) throw new Error('more LMOVEs than prepared elements');
          return resp(['LMOVE', `xl:${j}:a`, `xl:${j}:b`, 'LEFT', 'RIGHT']);
        case 1:
          if (this.smoved[j] >= this.elements) throw new Error('more SMOVEs than prepared members');
          return resp(['SMOVE', `xs:${j}:a`, `xs:${j}:b`, `m${this.smoved[j]++}`]);
        default: {
          const g = this.renamed[j]++;
          return resp(['RENAME', `xr:${j}:${g}`, `xr:${j}:${g + 1}`]);
        }
      }
    }
    switch (i % 3) {
      case 0:
        return resp(['INCR', `xc:${r}`]);
      case 1:
        return resp(['RPUSH', `xq:${r}`, 'v']);
      default:
        return resp(['HSET', `xh:${r}`, `f${i % 16}`, 'v']);
    }
  }
}

/** One SET per slot (`<prefix>{tag}`): once all are at the destination, everything written before them is. */
export function endMarkers(prefix: string): string[] {
  return Array.from({ length: SLOT_COUNT }, (_, s) => resp(['SET', `${prefix}{${hashTagForSlot(s)}}`, '1']));
}

/** Sends pipelined batches of RESP commands over one connection, a batch at a time, and counts the replies (errors too). */
export async function pipelined(port: number, batches: Iterable<string[]>): Promise<{ sent: number; errors: string[] }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let pending = 0;
  let wake: (() => void) | null = null;
  let tail = '';
  const errors: string[] = [];
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    // replies are +OK, :n, -ERR or a short bulk ($-1 / $n\r\nvalue) never containing CRLF inside
    const parts = (tail + d).split('\r\n');
    tail = parts.pop() ?? '';
    for (const p of parts) {
      if (p.startsWith('$') && p !== '$-1') continue; // the value follows on the next line
      if (p.startsWith('-') && errors.length < 5) errors.push(p);
      pending--;
    }
    if (pending === 0 && wake) wake();
  });
  let sent = 0;
  try {
    for (const batch of batches) {
      pending += batch.length;
      sent += batch.length;
      const done = new Promise<void>((r) => (wake = r));
      sock.write(batch.join(''));
      await done;
      wake = null;
    }
  } finally {
    sock.destroy();
  }
  return { sent, errors };
}
