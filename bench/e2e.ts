/**
 * End-to-end benchmark: `npm run bench`. Source -> sink THROUGH THE NODES, in a real Node-RED
 * process (node-red's red.js, this package installed into its userDir by symlink; flows
 * deployed through the admin API as the editor's Deploy button does). Prints progress lines
 * and, at the end, one line `RESULT {...}` (also written to .bench/e2e-result.json). Never
 * asserts: a missed target, a failed phase or a mismatch is reported in the JSON (`errors`,
 * `verified`), and the run goes on with the next phase.
 *
 * The flow: redis-endpoint x2, redis-replica-source (editor defaults: full+incremental, start
 * on deploy, batches of 1000 ops / 20 ms, values left encoded) -> redis-cluster-sink (conflict
 * "ignore", exactly once unless said otherwise); the source's progress output and the sink's
 * output go to function nodes that log one line a second / four a second, which this script
 * reads from Node-RED's stdout. Each pass uses new node ids, so each deploy is a clean full
 * sync (a reused id would resume from its saved position).
 *
 * 1. Full sync of the reference data set (bench/support/populate.lua, 1,000,000 keys,
 *    VALSIZE 100, ~277 MB in Redis) standalone -> empty standalone: from POST /flows until the
 *    destination's DBSIZE minus our `redis-sync:*` checkpoint keys reaches the source's key count
 *    (polled every 50 ms). Interleaved with a native `REPLICAOF` of the same source into a fresh
 *    empty redis-server until `master_link_status:up` and db0 holds every key (polled every 50
 *    ms; the source has repl-diskless-sync yes, repl-diskless-sync-delay 0). Median of the
 *    passes; ratio = median ours / median native (and per pass). Also the CPU each side used
 *    (Node-RED + destination redis-server, vs the fresh replica's own), which the other work on
 *    the shared cores disturbs less than wall time. After each pass: flow undeployed,
 *    checkpoint keys removed, DBSIZE and DEBUG DIGEST of both compared.
 * 2. Incremental, exactly-once and at-least-once sinks, passes interleaved (eo, alo / alo, eo):
 *    a fresh destination, a full sync through the flow, then `redis-benchmark -t
 *    set,incr,lpush,hset -P 16 -r 100000 -n 800000 -q` into the source (3.2M writes: 7-13 s at
 *    the 250-440k writes/s it drove on this shared 2-core machine with the flow running).
 *    Apply rate, measured at the destination: every 100 ms its INFO
 *    commandstats; applied = calls of SET+INCR+LPUSH+HSET minus calls of EXEC (each guarded
 *    group of the exactly-once sink carries exactly one checkpoint HSET inside its MULTI/EXEC;
 *    MULTI/EXEC themselves are not counted). W = the source's own count of those writes over
 *    the benchmark. Rate = (W - applied at the first sample showing any) / (time of the first
 *    sample with applied >= W - time of that first sample): the sustained rate while a backlog
 *    exists (the benchmark offers more than the sink applies); the benchmark's own rate is
 *    reported beside it, and the CPU per applied write of Node-RED (/proc/<pid>/stat) and of
 *    the destination (INFO cpu) from the benchmark's start to the end of the drain: the cost of
 *    exactly once in CPU, steadier than the rates. Then, with the same flow and caught up, the lag test: a paced writer
 *    (bench/support/e2e-load.ts) offers 100k SET/s (1000 every 10 ms, values = send time in
 *    ms) for 15 s; one SET per batch is a probe key whose arrival at the destination is seen
 *    through keyspace notifications: lag = arrival - send, p50/p99/max over all probes.
 *    Then undeploy + DBSIZE/DIGEST check as in 1.
 * 3. Cost of exactly once: incr_ops_per_s / incr_ops_per_s_at_least_once (medians).
 * 4. Peak RSS of the Node-RED process over the whole run: VmHWM of /proc/<pid>/status, read
 *    before it is stopped (also VmRSS sampled every 100 ms, per phase).
 * 5. Backpressure: a synced flow, the paced 100k/s load, and after 3 s the destination
 *    redis-server is SIGSTOPped for 20 s: the Node-RED RSS (max VmRSS while paused, vs before)
 *    and the source's spool (max of progress.spoolBytes and of the spool directory's size),
 *    whether the source link dropped (reconnects, sync_full at the source); after SIGCONT, the
 *    time until a probe arrives with a lag under 100 ms again (caught up under the same load).
 * 6. Standalone -> 3-master cluster (phase `cluster`, issue 15): the same source through source ->
 *    slot router (3 partitions) -> 3 exactly-once sinks into an empty 3-master cluster
 *    (test/harness's cluster, no replicas) until the masters' DBSIZE minus our per-slot
 *    checkpoint keys reaches the source's key count; against one native REPLICAOF of the same
 *    source into one fresh server in the same run, and `redis-cli --cluster import --cluster-from
 *    <source> --cluster-copy --cluster-replace` into another empty cluster. One pass each.
 * 7. Cross-slot moves (phase `crossslot`, issue 15): a fresh empty source with 1000 pairs of
 *    lists/sets/strings prepared, synced through the same cluster flow; then one connection
 *    writes BENCH_E2E_CROSS_OPS pipelined ops into the source as fast as it answers (batches of
 *    BENCH_E2E_CROSS_BATCH): INCR/RPUSH/HSET on 100k keys ("base"), or the same with every 10th
 *    op an LMOVE/SMOVE/RENAME between two slots ("cross"); then one SET per slot (16384). Since
 *    every slot's order is kept, all those markers on the cluster mean everything before them
 *    is applied: apply rate = ops (markers included) / time from the first write to the last
 *    marker seen (polled every 200 ms). cross_slot_ratio = cross / base, each with a fresh
 *    source and cluster.
 *
 * Instrumentation in the flow, and its cost: the sink's output (one message per batch) goes to
 * a function node that logs at most 4 lines a second (~1% of Node-RED's busy time in a
 * profile); the progress logger adds process.memoryUsage() (settings functionGlobalContext),
 * so the RESULT says what the memory was (heap or not) at the highest RSS seen.
 *
 * Knobs (environment): BENCH_E2E_KEYS (1000000), BENCH_E2E_VALSIZE (100), BENCH_E2E_PASSES (3
 * full-sync passes), BENCH_E2E_INCR_PASSES (3 per sink mode), BENCH_E2E_BENCH_N (800000 requests per
 * redis-benchmark test), BENCH_E2E_LAG_S
 * (15), BENCH_E2E_LAG_RATE (100000), BENCH_E2E_PAUSE_S (20), BENCH_E2E_PHASES
 * (full,incr,backpressure; also cluster,crossslot), BENCH_E2E_CLUSTER_IMPORT (1; 0 skips the
 * redis-cli import, ~40 s per 200k keys), BENCH_E2E_CROSS_OPS (300000), BENCH_E2E_CROSS_BATCH
 * (1000), BENCH_E2E_PROF (a directory: Node-RED runs with --cpu-prof, and
 * the profile is summarized per phase at the end; bench/support/e2e-profile.ts summarizes any
 * window of it), BENCH_E2E_NODE_FLAGS (extra node flags for Node-RED, space-separated, e.g.
 * --max-old-space-size=128), BENCH_E2E_NODE_LOG (a file Node-RED's output is appended to, e.g.
 * with BENCH_E2E_NODE_FLAGS=--trace-gc), BENCH_RDB_CACHE (<repo>/.bench).
 *
 * The package under test is a snapshot of dist/ taken at the start (see e2e-node-red.ts):
 * run `npm run build` first. MB = 10^6 bytes; RSS in MiB.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { ensureReferenceRdb, type CachedRdb } from './support/datasets';
import { closeCounters, clusterFlow, clusterKeysBesidesOurs, clusterUserKeys, CrossSlotLoad, emptyCluster, endMarkers, perSlotCounter, pipelined } from './support/e2e-cluster';
import { PacedLoad, type LagStats } from './support/e2e-load';
import { NodeRedChild, snapshotPackage, type FlowNode, type TaggedLine } from './support/e2e-node-red';
import { formatSummary, summarizeProfile } from './support/e2e-profile';
import { startServer, stopAllServers, type BenchServer } from './support/redis';

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');

function intEnv(name: string, fallback: number, min = 1): number {
  const text = process.env[name];
  const v = text === undefined || text === '' ? fallback : Number(text);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name}=${text} is not an integer >= ${min}`);
  return v;
}
const KEYS = intEnv('BENCH_E2E_KEYS', 1_000_000);
const VALSIZE = intEnv('BENCH_E2E_VALSIZE', 100);
const PASSES = intEnv('BENCH_E2E_PASSES', 3);
const INCR_PASSES = intEnv('BENCH_E2E_INCR_PASSES', 3);
/** Requests per redis-benchmark test (4 tests): 3.2M writes, 7-13 s at the 250-440k writes/s it offered here with the flow running. */
const BENCH_N = intEnv('BENCH_E2E_BENCH_N', 800_000);
const LAG_S = intEnv('BENCH_E2E_LAG_S', 15);
const LAG_RATE = intEnv('BENCH_E2E_LAG_RATE', 100_000, 100);
const PAUSE_S = intEnv('BENCH_E2E_PAUSE_S', 20);
/** 0: the cluster phase skips redis-cli --cluster import (about 40 s per 200k keys here). */
const CLUSTER_IMPORT = intEnv('BENCH_E2E_CLUSTER_IMPORT', 1, 0) > 0;
const CROSS_OPS = intEnv('BENCH_E2E_CROSS_OPS', 300_000);
const CROSS_BATCH = intEnv('BENCH_E2E_CROSS_BATCH', 1000);
const PHASES = new Set((process.env.BENCH_E2E_PHASES ?? 'full,incr,backpressure').split(',').map((s) => s.trim()));
const PROF = process.env.BENCH_E2E_PROF ? path.resolve(process.env.BENCH_E2E_PROF) : null;
const NODE_FLAGS = (process.env.BENCH_E2E_NODE_FLAGS ?? '').split(' ').filter((x) => x !== '');
const BENCH_TESTS = 'set,incr,lpush,hset';
const POLL_MS = 50;
const SAMPLE_MS = 100;

const t00 = performance.now();
const log = (msg: string): void => console.log(`[${((performance.now() - t00) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const mib = (kb: number): number => kb / 1024;
const mb = (bytes: number): number => bytes / 1e6;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r3 = (x: number | null): number | null => (x === null ? null : round(x, 3));
const r1 = (x: number | null): number | null => (x === null ? null : round(x, 1));

// ---- cleanup ----

let scratch: string | null = null;
let red: NodeRedChild | null = null;
let rssSampler: { open(): { close: () => number } } | null = null;
const noWindow = { close: (): number => 0 };
const rssWindow = (): { close: () => number } => rssSampler?.open() ?? noWindow;
const paused = new Set<number>();
process.on('exit', () => {
  for (const pid of paused) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping Node-RED and the servers`);
    process.exit(130); // 'exit' listeners: SIGCONT, Node-RED and servers SIGKILLed, scratch removed
  });
}

// ---- redis helpers ----

function client(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  c.on('error', () => undefined);
  return c;
}

function field(info: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return m?.[1].trim();
}

/** calls per command from INFO commandstats. */
function commandCalls(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

const WRITE_CMDS = ['set', 'incr', 'lpush', 'hset'];
const writes = (c: Record<string, number>): number => WRITE_CMDS.reduce((a, k) => a + (c[k] ?? 0), 0);

async function cpuOf(c: Redis): Promise<number> {
  const info = await c.info('cpu');
  return Number(field(info, 'used_cpu_user')) + Number(field(info, 'used_cpu_sys'));
}

/** Source: a redis-server with the cached RDB loaded (hard link as dump.rdb + DEBUG RELOAD NOSAVE). */
async function sourceWith(rdb: CachedRdb, dir: string): Promise<BenchServer> {
  const server = await startServer(dir, ['--enable-debug-command', 'yes', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']);
  const dump = path.join(server.dir, 'dump.rdb');
  try {
    linkSync(rdb.path, dump);
  } catch {
    copyFileSync(rdb.path, dump);
  }
  await server.cli('DEBUG', 'RELOAD', 'NOSAVE');
  return server;
}

/** Waits until the source has no replica and no fork left from the last pass. */
async function settle(src: Redis): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const info = await src.info();
    if (field(info, 'connected_slaves') === '0' && field(info, 'rdb_bgsave_in_progress') === '0') break;
    if (Date.now() > deadline) throw new Error('the source still has a replica or a fork after 60 s');
    await sleep(50);
  }
  await sleep(500);
}

function dirBytes(dir: string): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    try {
      n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}

// ---- the flow ----

const PROGRESS_FN = `const p = msg.payload;
const s = p.shards && p.shards[0] ? p.shards[0] : {};
const mu = global.get('memoryUsage');
const m = mu ? mu() : {};
const M = (x) => Math.round((x || 0) / 1048576);
node.log('E2E-PROGRESS ' + JSON.stringify({ src: p.source, at: p.at, phase: p.phase, keys: p.snapshot.keys, lagMs: p.lagMs, lagBytes: p.lagBytes, spoolBytes: p.spoolBytes, reconnects: p.reconnects, offset: s.offset, received: s.received, lastError: s.lastError,
  mem: { rss: M(m.rss), heapTotal: M(m.heapTotal), heapUsed: M(m.heapUsed), external: M(m.external), arrayBuffers: M(m.arrayBuffers) } }));
return null;`;

const SINK_FN = `const now = Date.now();
const st = context.get('st') || { t: 0 };
const stats = msg.payload.stats || {};
st.last = { src: msg.redisSync && msg.redisSync.source, at: now, total: msg.payload.total, commands: stats.commands, keys: stats.keys, skippedReplays: stats.skippedReplays };
if (now - st.t >= 250) { st.t = now; node.log('E2E-SINK ' + JSON.stringify(st.last)); }
if (st.timer) clearTimeout(st.timer);
st.timer = setTimeout(function () { node.log('E2E-SINK ' + JSON.stringify(st.last)); }, 300);
context.set('st', st);
return null;`;

function fnNode(id: string, name: string, func: string): FlowNode {
  return { id, type: 'function', z: 'e2e-tab', name, func, outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], wires: [[]] };
}

function syncFlow(tag: string, srcPort: number, dstPort: number, exactlyOnce: boolean): FlowNode[] {
  return [
    { id: 'e2e-tab', type: 'tab', label: 'e2e bench' },
    { id: `srcEp-${tag}`, type: 'redis-endpoint', name: 'source', mode: 'standalone', host: '127.0.0.1', port: String(srcPort), seeds: '' },
    { id: `dstEp-${tag}`, type: 'redis-endpoint', name: 'destination', mode: 'standalone', host: '127.0.0.1', port: String(dstPort), seeds: '' },
    {
      id: `src-${tag}`, type: 'redis-replica-source', z: 'e2e-tab', name: '', endpoint: `srcEp-${tag}`,
      mode: 'full+incremental', startOn: 'deploy', shards: 'all', preferReplica: false, decodeValues: false,
      batchOps: 1000, batchLatencyMs: 20, bigKeyMb: 1, spoolDir: '', spoolMaxMb: 4096,
      wires: [[`sink-${tag}`], [`prog-${tag}`]],
    },
    { id: `sink-${tag}`, type: 'redis-cluster-sink', z: 'e2e-tab', name: '', endpoint: `dstEp-${tag}`, conflict: 'ignore', exactlyOnce, restoreMaxMb: 64, wires: [[`sinkstat-${tag}`]] },
    fnNode(`prog-${tag}`, 'progress -> log', PROGRESS_FN),
    fnNode(`sinkstat-${tag}`, 'sink output -> log', SINK_FN),
  ];
}

// ---- measurement plumbing ----

/** VmRSS of Node-RED every 100 ms: the max over the run, and over windows opened and closed at will. */
class RssSampler {
  overall = 0;
  last = 0;
  private readonly windows = new Set<{ max: number }>();
  private timer: NodeJS.Timeout;
  constructor(private readonly r: NodeRedChild) {
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }
  sample(): number {
    if (!this.r.alive) return this.last;
    try {
      const { rssKb } = this.r.memory();
      this.last = rssKb;
      this.overall = Math.max(this.overall, rssKb);
      for (const w of this.windows) w.max = Math.max(w.max, rssKb);
    } catch {
      // exiting
    }
    return this.last;
  }
  /** Starts a window; its close() returns the max VmRSS (KiB) seen in it. */
  open(): { close: () => number } {
    const w = { max: 0 };
    this.windows.add(w);
    this.sample();
    return {
      close: () => {
        this.sample();
        this.windows.delete(w);
        return w.max;
      },
    };
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The progress lines of one source node id (latest first-class fields), with maxima since a mark. */
class ProgressWatch {
  latest: Record<string, unknown> | null = null;
  maxLagMs = 0;
  maxSpool = 0;
  maxReconnects = 0;
  sinkLatest: Record<string, unknown> | null = null;
  private off: () => void;
  constructor(r: NodeRedChild, private readonly srcId: string) {
    this.off = r.onTagged((l: TaggedLine) => {
      if (l.data.src !== this.srcId) return;
      if (l.tag === 'SINK') {
        this.sinkLatest = l.data;
        return;
      }
      this.latest = l.data;
      this.maxLagMs = Math.max(this.maxLagMs, Number(l.data.lagMs) || 0);
      this.maxSpool = Math.max(this.maxSpool, Number(l.data.spoolBytes) || 0);
      this.maxReconnects = Math.max(this.maxReconnects, Number(l.data.reconnects) || 0);
      if (l.data.lastError) lastErrors.add(String(l.data.lastError));
      const mem = l.data.mem as Record<string, number> | undefined;
      if (mem && memAtFirst === null) memAtFirst = { ...mem, during: this.srcId };
      if (mem && mem.rss > Number(memAtPeak?.rss ?? 0)) memAtPeak = { ...mem, during: this.srcId };
    });
  }
  mark(): void {
    this.maxLagMs = 0;
    this.maxSpool = 0;
  }
  close(): void {
    this.off();
  }
}
const lastErrors = new Set<string>();
/** process.memoryUsage() of Node-RED (MiB) in the progress line with the highest RSS. */
let memAtPeak: Record<string, number | string> | null = null;
let memAtFirst: Record<string, number | string> | null = null;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- 1. full sync ----

interface Synced {
  dst: BenchServer;
  dc: Redis;
  tag: string;
  srcId: string;
  watch: ProgressWatch;
  seconds: number;
  firstKeyS: number | null;
  nodeRedCpuS: number;
  dstCpuS: number;
  /** Max VmRSS of Node-RED during this full sync (KiB). */
  maxRssKb: number;
}

/** Deploys a source -> sink flow into a fresh destination; resolves when it holds `wantKeys` keys. */
async function deployAndSync(r: NodeRedChild, src: BenchServer, tag: string, exactlyOnce: boolean, wantKeys: number): Promise<Synced> {
  const dst = await startServer(scratch as string, ['--enable-debug-command', 'yes']);
  const dc = client(dst.port);
  await dc.connect();
  const srcId = `src-${tag}`;
  const watch = new ProgressWatch(r, srcId);
  const cpu0 = r.cpuSeconds();
  const dcpu0 = await cpuOf(dc);
  const win = rssWindow();
  const t0 = performance.now();
  await r.deploy(syncFlow(tag, src.port, dst.port, exactlyOnce));
  let firstKeyS: number | null = null;
  let k = 1;
  const deadline = t0 + 900_000;
  for (;;) {
    const res = (await dc.pipeline().dbsize().exists('redis-sync:ckpt', 'redis-sync:ckpt:global').exec()) as Array<[Error | null, number]>;
    const userKeys = res[0][1] - res[1][1];
    const now = performance.now();
    if (userKeys > 0 && firstKeyS === null) firstKeyS = (now - t0) / 1000;
    if (userKeys >= wantKeys) {
      const seconds = (now - t0) / 1000;
      return { dst, dc, tag, srcId, watch, seconds, firstKeyS, nodeRedCpuS: r.cpuSeconds() - cpu0, dstCpuS: (await cpuOf(dc)) - dcpu0, maxRssKb: win.close() };
    }
    if (now > deadline) throw new Error(`full sync ${tag}: ${userKeys} of ${wantKeys} keys after 900 s; Node-RED log:\n${r.logTail(20)}`);
    const due = t0 + k * POLL_MS;
    k = Math.max(k + 1, Math.ceil((performance.now() - t0) / POLL_MS));
    await sleep(Math.max(0, due - performance.now()));
  }
}

async function nativeReplicaof(src: BenchServer, wantKeys: number, srcDigest: string): Promise<{ seconds: number; digestOk: boolean; cpuS: number }> {
  const rep = await startServer(scratch as string, ['--enable-debug-command', 'yes']);
  const c = client(rep.port);
  try {
    await c.connect();
    const t0 = performance.now();
    await c.call('REPLICAOF', '127.0.0.1', String(src.port));
    let k = 1;
    for (;;) {
      const info = String(await c.call('INFO', 'replication', 'keyspace'));
      const keys = Number(/^db0:keys=(\d+)/m.exec(info)?.[1] ?? 0);
      if (field(info, 'master_link_status') === 'up' && keys >= wantKeys) break;
      if (performance.now() - t0 > 600_000) throw new Error(`native REPLICAOF: ${keys} of ${wantKeys} keys after 600 s`);
      const due = t0 + k * POLL_MS;
      k = Math.max(k + 1, Math.ceil((performance.now() - t0) / POLL_MS));
      await sleep(Math.max(0, due - performance.now()));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpuS = await cpuOf(c); // a fresh server: all of it is the sync (receive, write the RDB, load it)
    const digestOk = String(await c.call('DEBUG', 'DIGEST')) === srcDigest;
    return { seconds, digestOk, cpuS };
  } finally {
    c.disconnect();
    await rep.stop();
  }
}

interface Verified {
  srcKeys: number;
  dstKeys: number;
  checkpointKeys: number;
  digestMatch: boolean;
}

/** With the flow undeployed: removes our checkpoint keys from the (throw-away) destination, compares DBSIZE and DEBUG DIGEST. */
async function verify(sc: Redis, dc: Redis): Promise<Verified> {
  let cursor = '0';
  const ours: string[] = [];
  do {
    const [next, keys] = await dc.scan(cursor, 'MATCH', 'redis-sync:*', 'COUNT', 10000);
    cursor = next;
    ours.push(...keys);
  } while (cursor !== '0');
  if (ours.length > 0) await dc.del(...ours);
  const [srcKeys, dstKeys] = await Promise.all([sc.dbsize(), dc.dbsize()]);
  const [a, b] = (await Promise.all([sc.call('DEBUG', 'DIGEST'), dc.call('DEBUG', 'DIGEST')])).map(String);
  return { srcKeys, dstKeys, checkpointKeys: ours.length, digestMatch: a === b };
}

async function teardown(s: Synced): Promise<void> {
  s.watch.close();
  s.dc.disconnect();
  await s.dst.stop();
}

// ---- 2. incremental ----

function runBenchmark(port: number, n: number): Promise<{ wallS: number; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-t', BENCH_TESTS, '-P', '16', '-r', '100000', '-n', String(n), '-q'];
    const t0 = performance.now();
    const child: ChildProcess = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    benchChild = child;
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      benchChild = null;
      const lines = out.split(/[\r\n]+/).filter((l) => /requests per second/.test(l)).map((l) => l.trim());
      if (code !== 0) reject(new Error(`redis-benchmark exited ${code}: ${out.slice(-500)}`));
      else resolve({ wallS: (performance.now() - t0) / 1000, lines });
    });
  });
}
let benchChild: ChildProcess | null = null;
process.on('exit', () => benchChild?.kill('SIGKILL'));

interface IncrResult {
  mode: 'eo' | 'alo';
  fullSyncS: number;
  writes: number;
  benchWallS: number;
  benchWritesPerS: number;
  benchLines: string[];
  applyOpsPerS: number | null;
  peak1sOpsPerS: number | null;
  /** Time from the benchmark's end until the destination had applied everything. */
  drainAfterBenchS: number | null;
  appliedAtDst: number;
  execCalls: number;
  sinkCommandsDelta: number | null;
  maxProgressLagMs: number;
  maxSpoolMb: number;
  lag: (LagStats & { offeredPerS: number; lateTicks: number; maxProgressLagMs: number; maxRssMb: number }) | null;
  fullSyncMaxRssMb: number;
  streamMaxRssMb: number;
  verified: Verified | null;
  nodeRedCpuPerS: number | null;
  /** Node-RED CPU and destination redis CPU per applied write, from the benchmark's start until everything was applied (µs). */
  nodeRedCpuUsPerOp: number;
  dstCpuUsPerOp: number;
  load1: number;
}

async function incrementalPass(r: NodeRedChild, src: BenchServer, sc: Redis, mode: 'eo' | 'alo', idx: number, benchN: number): Promise<IncrResult> {
  const tag = `inc-${mode}-${idx}`;
  const want = await sc.dbsize();
  const s = await deployAndSync(r, src, tag, mode === 'eo', want);
  log(`  ${tag}: full sync of ${want} keys ${s.seconds.toFixed(2)} s; waiting for the source node to stream`);
  try {
    await waitFor(`${tag} streaming`, () => s.watch.latest?.phase === 'streaming', 60_000);
    await sleep(1000);
    const s0 = commandCalls(await sc.info('commandstats'));
    const d0 = commandCalls(await s.dc.info('commandstats'));
    const sink0 = Number(s.watch.sinkLatest?.commands ?? 0);
    const appliedOf = (d: Record<string, number>): number => writes(d) - writes(d0) - ((d.exec ?? 0) - (d0.exec ?? 0));
    const samples: Array<{ t: number; applied: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t = performance.now();
        samples.push({ t, applied: appliedOf(commandCalls(await s.dc.info('commandstats'))) });
        await sleep(Math.max(0, SAMPLE_MS - (performance.now() - t)));
      }
    })();
    s.watch.mark();
    const streamWin = rssWindow();
    const dcpu0 = await cpuOf(s.dc);
    const cpu0 = r.cpuSeconds();
    const tb0 = performance.now();
    const bench = await runBenchmark(src.port, benchN);
    const tBenchEnd = performance.now();
    const s1 = commandCalls(await sc.info('commandstats'));
    const W = writes(s1) - writes(s0);
    log(`  ${tag}: redis-benchmark ${bench.wallS.toFixed(2)} s, ${W} writes = ${(W / bench.wallS / 1e3).toFixed(0)}k/s offered (${bench.lines.join('; ')})`);
    const drainTimeout = Math.max(180_000, bench.wallS * 30_000);
    let doneAt: number | null = null;
    try {
      await waitFor(`${tag}: destination applying ${W} writes`, () => {
        const last = samples[samples.length - 1];
        if (last && last.applied >= W) doneAt = last.t;
        return doneAt !== null;
      }, drainTimeout, 20);
    } finally {
      sampling = false;
      await sampler;
    }
    const cpuS = r.cpuSeconds() - cpu0;
    const dstCpuS = (await cpuOf(s.dc)) - dcpu0;
    const streamRss = streamWin.close();
    const first = samples.find((x) => x.applied > 0);
    const last = samples[samples.length - 1];
    let rate: number | null = null;
    if (first && doneAt !== null && doneAt > first.t) rate = (W - first.applied) / ((doneAt - first.t) / 1000);
    let peak = 0;
    for (let i = 0, j = 0; i < samples.length; i++) {
      while (samples[i].t - samples[j].t > 1000) j++;
      if (samples[i].t - samples[j].t >= 900) peak = Math.max(peak, (samples[i].applied - samples[j].applied) / ((samples[i].t - samples[j].t) / 1000));
    }
    const dEnd = commandCalls(await s.dc.info('commandstats'));
    await sleep(400); // the sink-output logger's trailing line
    const sinkDelta = s.watch.sinkLatest ? Number(s.watch.sinkLatest.commands) - sink0 : null;
    const incr: IncrResult = {
      mode,
      fullSyncS: s.seconds,
      writes: W,
      benchWallS: bench.wallS,
      benchWritesPerS: W / bench.wallS,
      benchLines: bench.lines,
      applyOpsPerS: rate,
      peak1sOpsPerS: peak || null,
      drainAfterBenchS: doneAt === null ? null : Math.max(0, (doneAt - tBenchEnd) / 1000),
      appliedAtDst: last?.applied ?? 0,
      execCalls: (dEnd.exec ?? 0) - (d0.exec ?? 0),
      sinkCommandsDelta: sinkDelta,
      maxProgressLagMs: s.watch.maxLagMs,
      maxSpoolMb: mb(s.watch.maxSpool),
      lag: null,
      verified: null,
      fullSyncMaxRssMb: round(mib(s.maxRssKb)),
      streamMaxRssMb: round(mib(streamRss)),
      nodeRedCpuPerS: doneAt === null ? null : cpuS / ((doneAt - tb0) / 1000),
      nodeRedCpuUsPerOp: (cpuS / W) * 1e6,
      dstCpuUsPerOp: (dstCpuS / W) * 1e6,
      load1: os.loadavg()[0],
    };
    log(`  ${tag}: destination applied ${incr.appliedAtDst} (= ${W}? ${incr.appliedAtDst === W}) in ${first && doneAt ? ((doneAt - first.t) / 1000).toFixed(2) : '?'} s ` +
      `=> ${rate === null ? '?' : (rate / 1e3).toFixed(1)}k ops/s sustained, peak 1 s ${(peak / 1e3).toFixed(1)}k/s; ` +
      `done ${incr.drainAfterBenchS?.toFixed(2)} s after the benchmark; ${incr.execCalls} MULTI/EXEC groups; sink counted ${sinkDelta} commands; ` +
      `progress max lag ${incr.maxProgressLagMs} ms, spool max ${incr.maxSpoolMb.toFixed(1)} MB; Node-RED ${(incr.nodeRedCpuPerS ?? 0).toFixed(2)} CPU-s/s = ` +
      `${incr.nodeRedCpuUsPerOp.toFixed(2)} µs/op (destination redis ${incr.dstCpuUsPerOp.toFixed(2)} µs/op), load average ${incr.load1.toFixed(1)}, ` +
      `max RSS ${incr.streamMaxRssMb} MiB (full sync before: ${incr.fullSyncMaxRssMb} MiB)`);

    // lag at an offered 100k writes/s, same flow, caught up
    await sleep(1000);
    s.watch.mark();
    const load = new PacedLoad({ srcPort: src.port, dstPort: s.dst.port, batch: LAG_RATE / 100, intervalMs: 10 });
    try {
      await load.connect();
      const lagWin = rssWindow();
      load.start();
      await sleep(LAG_S * 1000);
      await load.stop();
      const all = await load.waitProbes(60_000);
      const st = load.stats();
      const offered = load.acked / ((load.stoppedAt - load.startedAt) / 1000);
      incr.lag = { ...st, offeredPerS: offered, lateTicks: load.lateTicks, maxProgressLagMs: s.watch.maxLagMs, maxRssMb: round(mib(lagWin.close())) };
      log(`  ${tag}: lag at ${(offered / 1e3).toFixed(1)}k writes/s offered for ${LAG_S} s: p50 ${st.p50} ms, p90 ${st.p90} ms, p99 ${st.p99} ms, max ${st.max} ms ` +
        `(${st.arrived}/${st.probes} probes${all ? '' : ', SOME NEVER ARRIVED'}; ${load.lateTicks} late ticks; source progress max lagMs ${s.watch.maxLagMs}; max RSS ${incr.lag.maxRssMb} MiB)` +
        (load.errors.length ? `; writer errors: ${load.errors.join(' | ')}` : ''));
    } finally {
      await load.close();
    }
    await r.undeploy();
    incr.verified = await verify(sc, s.dc);
    log(`  ${tag}: verified: ${JSON.stringify(incr.verified)}`);
    return incr;
  } finally {
    await r.undeploy().catch(() => undefined);
    await teardown(s);
  }
}

// ---- main ----

const errors: string[] = [];
const result: Record<string, unknown> = {};
let reported = false;

/** Prints the RESULT line and writes .bench/e2e-result.json (once; also after a failed run). */
function report(): void {
  if (reported) return;
  reported = true;
  result.errors = errors;
  result.load_average = os.loadavg().map((x) => round(x, 2));
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(path.join(CACHE, 'e2e-result.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log('');
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function main(): Promise<void> {
  const gitHead = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib', 'nodes'], { cwd: ROOT, encoding: 'utf8' }).trim();
  result.git = gitHead + (dirty ? '+uncommitted lib/nodes' : '');
  log(`bench:e2e  node ${process.version}, ${os.cpus().length} cpus, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ` +
    `${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 3).join(' ')}; git ${gitHead}${dirty ? ` (lib/nodes with uncommitted changes: ${dirty.split('\n').length} paths)` : ''}`);
  const ref = await ensureReferenceRdb(CACHE, KEYS, VALSIZE, (m) => log(m));
  await stopAllServers();
  mkdirSync(CACHE, { recursive: true });
  scratch = mkdtempSync(path.join(CACHE, 'e2e-'));
  const pkgDir = path.join(scratch, 'pkg');
  const snap = await snapshotPackage(ROOT, pkgDir);
  log(`package snapshot (dist/ as built now, ${statSync(path.join(ROOT, 'dist')).mtime.toISOString()}): ${pkgDir}; node types ${snap.nodes.join(', ')}`);

  const src = await sourceWith(ref, scratch);
  const sc = client(src.port);
  await sc.connect();
  const srcKeys = await sc.dbsize();
  log(`source redis-server :${src.port}: ${srcKeys} keys, used_memory ${field(await sc.info('memory'), 'used_memory_human')} (${path.basename(ref.path)}, ${mb(ref.bytes).toFixed(1)} MB RDB)`);
  if (srcKeys !== KEYS) errors.push(`the source holds ${srcKeys} keys, expected ${KEYS}`);

  const nodeArgs = PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=e2e-node-red-${Date.now()}.cpuprofile`] : [];
  nodeArgs.push(...NODE_FLAGS);
  if (NODE_FLAGS.length > 0) result.node_flags = NODE_FLAGS.join(' ');
  if (PROF) mkdirSync(PROF, { recursive: true });
  const r = await NodeRedChild.start({ userDir: path.join(scratch, 'node-red'), packageDir: pkgDir, nodeArgs });
  red = r;
  const rss = new RssSampler(r);
  rssSampler = rss;
  const phases: Array<{ name: string; fromS: number; toS: number }> = [];
  const phase = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const from = (performance.now() - r.spawnedAt) / 1000;
    const win = rss.open();
    try {
      await fn();
    } catch (err) {
      const msg = `${name}: ${(err as Error).message}`;
      errors.push(msg);
      log(`!! ${msg}`);
      await r.undeploy().catch(() => undefined);
    }
    const maxRss = win.close();
    result[`${name}_max_rss_mb`] = round(mib(maxRss));
    phases.push({ name, fromS: from, toS: (performance.now() - r.spawnedAt) / 1000 });
  };
  const base = r.memory();
  log(`Node-RED pid ${r.pid} on :${r.port} (userDir ${r.userDir}${PROF ? `, --cpu-prof -> ${PROF}` : ''}); RSS at start ${mib(base.rssKb).toFixed(1)} MiB`);
  result.node_red_start_rss_mb = round(mib(base.rssKb));

  // 1. full sync
  if (PHASES.has('full')) {
    await phase('full', async () => {
      log('');
      log(`1. full sync, ${srcKeys} keys: through the nodes vs native REPLICAOF, ${PASSES} interleaved passes`);
      const digest = String(await sc.call('DEBUG', 'DIGEST'));
      const native: number[] = [];
      const ours: number[] = [];
      const ratios: number[] = [];
      const verified: Array<Verified & { nativeDigestMatch: boolean }> = [];
      const extra: Array<Record<string, unknown>> = [];
      const cpuOurs: number[] = [];
      const cpuNative: number[] = [];
      for (let i = 1; i <= PASSES; i++) {
        await settle(sc);
        const n = await nativeReplicaof(src, srcKeys, digest);
        native.push(n.seconds);
        cpuNative.push(n.cpuS);
        log(`  pass ${i}: native REPLICAOF ${n.seconds.toFixed(3)} s, replica ${n.cpuS.toFixed(2)} CPU-s (replica digest ${n.digestOk ? 'matches' : 'DIFFERS'}); load average ${os.loadavg()[0].toFixed(1)}`);
        await settle(sc);
        const s = await deployAndSync(r, src, `fs${i}`, true, srcKeys);
        const passRss = s.maxRssKb;
        try {
          ours.push(s.seconds);
          ratios.push(s.seconds / n.seconds);
          log(`  pass ${i}: through Node-RED ${s.seconds.toFixed(3)} s (first key at ${s.firstKeyS?.toFixed(2)} s) = ${(s.seconds / n.seconds).toFixed(2)}x native; ` +
            `Node-RED ${s.nodeRedCpuS.toFixed(2)} CPU-s (${(s.nodeRedCpuS / s.seconds).toFixed(2)}/s), destination redis ${s.dstCpuS.toFixed(2)} CPU-s; Node-RED max RSS ${mib(passRss).toFixed(1)} MiB`);
          cpuOurs.push(s.nodeRedCpuS + s.dstCpuS);
          extra.push({ node_red_cpu_s: round(s.nodeRedCpuS, 2), dst_redis_cpu_s: round(s.dstCpuS, 2), native_replica_cpu_s: round(n.cpuS, 2), first_key_s: r3(s.firstKeyS), max_rss_mb: round(mib(passRss)), load1: round(os.loadavg()[0], 1) });
          await r.undeploy();
          const v = await verify(sc, s.dc);
          verified.push({ ...v, nativeDigestMatch: n.digestOk });
          log(`  pass ${i}: verified: ${JSON.stringify(v)}`);
        } finally {
          await teardown(s);
        }
      }
      const mo = median(ours) as number;
      const mn = median(native) as number;
      Object.assign(result, {
        keys: srcKeys,
        full_sync_s: r3(mo),
        native_replicaof_s: r3(mn),
        ratio: round(mo / mn, 2),
        full_sync_s_all: ours.map((x) => round(x, 3)),
        native_replicaof_s_all: native.map((x) => round(x, 3)),
        ratio_per_pass: ratios.map((x) => round(x, 2)),
        full_sync_cpu_s: round(median(cpuOurs) as number, 2),
        native_replicaof_cpu_s: round(median(cpuNative) as number, 2),
        cpu_ratio: round((median(cpuOurs) as number) / (median(cpuNative) as number), 2),
        full_sync_detail: extra,
        full_sync_verified: verified.every((v) => v.digestMatch && v.srcKeys === v.dstKeys && v.nativeDigestMatch),
      });
      log(`  full sync: median ${mo.toFixed(3)} s vs native ${mn.toFixed(3)} s = ${(mo / mn).toFixed(2)}x (target <= 1.5: ${mo / mn <= 1.5 ? 'met' : 'NOT met'}); ` +
        `CPU (Node-RED + destination redis) ${result.full_sync_cpu_s} s vs the native replica's ${result.native_replicaof_cpu_s} s = ${result.cpu_ratio}x`);
    });
  }

  // 2 + 3. incremental
  if (PHASES.has('incr')) {
    await phase('incr', async () => {
      log('');
      const benchN = BENCH_N;
      log(`2. incremental: redis-benchmark -n ${benchN} (x4 tests), ${INCR_PASSES} passes per sink mode`);
      result.bench_n = benchN;
      const runs: IncrResult[] = [];
      for (let i = 1; i <= INCR_PASSES; i++) {
        const order: Array<'eo' | 'alo'> = i % 2 === 1 ? ['eo', 'alo'] : ['alo', 'eo'];
        for (const mode of order) {
          await settle(sc);
          try {
            runs.push(await incrementalPass(r, src, sc, mode, i, benchN));
          } catch (err) {
            const msg = `incremental ${mode} pass ${i}: ${(err as Error).message}`;
            errors.push(msg);
            log(`!! ${msg}`);
          }
        }
      }
      const of = (mode: 'eo' | 'alo'): IncrResult[] => runs.filter((x) => x.mode === mode);
      const rate = (mode: 'eo' | 'alo'): number | null => median(of(mode).map((x) => x.applyOpsPerS).filter((x): x is number => x !== null));
      const lagP = (mode: 'eo' | 'alo', k: 'p50' | 'p99' | 'max'): number | null => median(of(mode).map((x) => x.lag?.[k] ?? null).filter((x): x is number => x !== null));
      const eo = rate('eo');
      const alo = rate('alo');
      Object.assign(result, {
        incr_ops_per_s: eo === null ? null : Math.round(eo),
        incr_ops_per_s_all: of('eo').map((x) => (x.applyOpsPerS === null ? null : Math.round(x.applyOpsPerS))),
        incr_ops_per_s_at_least_once: alo === null ? null : Math.round(alo),
        incr_ops_per_s_at_least_once_all: of('alo').map((x) => (x.applyOpsPerS === null ? null : Math.round(x.applyOpsPerS))),
        exactly_once_cost_ratio: eo !== null && alo !== null ? round(eo / alo, 2) : null,
        incr_node_red_cpu_us_per_op: r3(median(of('eo').map((x) => x.nodeRedCpuUsPerOp))),
        incr_node_red_cpu_us_per_op_at_least_once: r3(median(of('alo').map((x) => x.nodeRedCpuUsPerOp))),
        incr_dst_cpu_us_per_op: r3(median(of('eo').map((x) => x.dstCpuUsPerOp))),
        incr_dst_cpu_us_per_op_at_least_once: r3(median(of('alo').map((x) => x.dstCpuUsPerOp))),
        incr_offered_writes_per_s: Math.round(median(runs.map((x) => x.benchWritesPerS)) ?? 0),
        incr_peak_1s_ops_per_s: Math.round(median(of('eo').map((x) => x.peak1sOpsPerS ?? 0)) ?? 0),
        incr_drain_after_bench_s: of('eo').map((x) => r3(x.drainAfterBenchS)),
        incr_max_spool_mb: round(Math.max(0, ...runs.map((x) => x.maxSpoolMb))),
        incr_node_red_cpu_per_s: runs.map((x) => r1(x.nodeRedCpuPerS === null ? null : x.nodeRedCpuPerS)),
        lag_p99_ms: r1(lagP('eo', 'p99')),
        lag_p50_ms: r1(lagP('eo', 'p50')),
        lag_max_ms: r1(lagP('eo', 'max')),
        lag_p99_ms_all: of('eo').map((x) => x.lag?.p99 ?? null),
        lag_p99_ms_at_least_once: r1(lagP('alo', 'p99')),
        lag_offered_writes_per_s: Math.round(median(runs.map((x) => x.lag?.offeredPerS ?? 0)) ?? 0),
        lag_probes: runs.map((x) => (x.lag ? `${x.lag.arrived}/${x.lag.probes}` : null)),
        incr_verified: runs.length > 0 && runs.every((x) => x.verified !== null && x.verified.digestMatch && x.verified.srcKeys === x.verified.dstKeys && x.appliedAtDst === x.writes),
        incr_runs: runs.map((x) => ({
          mode: x.mode, writes: x.writes, applied: x.appliedAtDst, bench_s: round(x.benchWallS, 2), bench_writes_per_s: Math.round(x.benchWritesPerS),
          ops_per_s: x.applyOpsPerS === null ? null : Math.round(x.applyOpsPerS), peak_1s_ops_per_s: x.peak1sOpsPerS === null ? null : Math.round(x.peak1sOpsPerS),
          drain_after_bench_s: r3(x.drainAfterBenchS), exec_groups: x.execCalls, node_red_cpu_us_per_op: r3(x.nodeRedCpuUsPerOp), dst_cpu_us_per_op: r3(x.dstCpuUsPerOp), load1: round(x.load1, 1), sink_commands: x.sinkCommandsDelta, node_red_cpu_per_s: r1(x.nodeRedCpuPerS),
          full_sync_s: round(x.fullSyncS, 2), full_sync_max_rss_mb: x.fullSyncMaxRssMb, stream_max_rss_mb: x.streamMaxRssMb, lag: x.lag, digest_match: x.verified?.digestMatch ?? null,
        })),
      });
      log(`  CPU per applied write: Node-RED ${result.incr_node_red_cpu_us_per_op} µs exactly once vs ${result.incr_node_red_cpu_us_per_op_at_least_once} µs at least once; ` +
        `destination redis ${result.incr_dst_cpu_us_per_op} vs ${result.incr_dst_cpu_us_per_op_at_least_once} µs (medians; less sensitive to the shared CPU than the rates)`);
      log(`  incremental: exactly once ${eo === null ? '?' : (eo / 1e3).toFixed(1)}k ops/s (target >= 200k: ${eo !== null && eo >= 200_000 ? 'met' : 'NOT met'}), ` +
        `at least once ${alo === null ? '?' : (alo / 1e3).toFixed(1)}k ops/s, ratio ${result.exactly_once_cost_ratio}; lag p99 ${result.lag_p99_ms} ms (target < 100: ${(lagP('eo', 'p99') ?? Infinity) < 100 ? 'met' : 'NOT met'})`);
    });
  }

  // 6. standalone -> 3-master cluster full sync (issue 15)
  if (PHASES.has('cluster')) {
    await phase('cluster', async () => {
      log('');
      log(`6. full sync of ${srcKeys} keys standalone -> slot router (3 partitions) -> 3 sinks -> empty 3-master cluster, vs native REPLICAOF into one server` +
        (CLUSTER_IMPORT ? ' and redis-cli --cluster import' : ''));
      const digest = String(await sc.call('DEBUG', 'DIGEST'));
      await settle(sc);
      const n = await nativeReplicaof(src, srcKeys, digest);
      log(`  native REPLICAOF ${n.seconds.toFixed(3)} s (replica digest ${n.digestOk ? 'matches' : 'DIFFERS'}); load average ${os.loadavg()[0].toFixed(1)}`);
      await settle(sc);
      const cluster = await emptyCluster();
      try {
        const ckpt = await perSlotCounter(cluster, 'redis-sync:ckpt:');
        const seeds = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
        const cpu0 = r.cpuSeconds();
        const win = rssWindow();
        const t0 = performance.now();
        await r.deploy(clusterFlow('cl', src.port, seeds));
        await waitFor(`${srcKeys} keys on the cluster`, async () => (await clusterUserKeys(ckpt.masters, ckpt.count, srcKeys)) >= srcKeys, 900_000, POLL_MS);
        const seconds = (performance.now() - t0) / 1000;
        const cpuS = r.cpuSeconds() - cpu0;
        const maxRss = win.close();
        await r.undeploy();
        const userKeys = await clusterKeysBesidesOurs(ckpt.masters);
        ckpt.close();
        Object.assign(result, {
          cluster_keys: srcKeys,
          cluster_full_sync_s: r3(seconds),
          cluster_native_replicaof_s: r3(n.seconds),
          cluster_vs_replicaof_ratio: round(seconds / n.seconds, 2),
          cluster_full_sync_node_red_cpu_s: round(cpuS, 2),
          cluster_full_sync_max_rss_mb: round(mib(maxRss)),
          cluster_full_sync_keys_match: userKeys === srcKeys,
          cluster_load1: round(os.loadavg()[0], 1),
        });
        // the full phase's native_replicaof_s, when it ran, is the median of its passes
        result.native_replicaof_s ??= r3(n.seconds);
        log(`  through the nodes ${seconds.toFixed(3)} s = ${(seconds / n.seconds).toFixed(2)}x native REPLICAOF (${n.seconds.toFixed(3)} s); Node-RED ${cpuS.toFixed(2)} CPU-s, max RSS ${mib(maxRss).toFixed(1)} MiB; ` +
          `${userKeys} user keys on the cluster after undeploy; load average ${os.loadavg()[0].toFixed(1)}`);
      } finally {
        closeCounters();
        await cluster.stop();
      }
      if (CLUSTER_IMPORT) {
        const target = await emptyCluster();
        try {
          const t0 = performance.now();
          await target.nodes[0].cli('--cluster', 'import', `${target.nodes[0].host}:${target.nodes[0].port}`, '--cluster-from', `127.0.0.1:${src.port}`, '--cluster-copy', '--cluster-replace');
          const seconds = (performance.now() - t0) / 1000;
          const keys = (await Promise.all(target.nodes.map((m) => m.command('DBSIZE')))).reduce((a: number, x) => a + Number(x), 0);
          result.redis_cli_cluster_import_s = r3(seconds);
          result.redis_cli_cluster_import_keys_match = keys === srcKeys;
          log(`  redis-cli --cluster import --cluster-copy --cluster-replace: ${seconds.toFixed(3)} s (${keys} keys); load average ${os.loadavg()[0].toFixed(1)}`);
        } finally {
          await target.stop();
        }
      }
    });
  }

  // 7. cross-slot moves into a 3-master cluster (issue 15)
  if (PHASES.has('crossslot')) {
    await phase('crossslot', async () => {
      log('');
      log(`7. apply rate into a 3-master cluster, ${CROSS_OPS} pipelined INCR/RPUSH/HSET (batches of ${CROSS_BATCH}), without and with 1 in 10 replaced by LMOVE/SMOVE/RENAME between slots`);
      const runs: Record<string, Record<string, unknown>> = {};
      for (const [name, crossEvery] of [['base', 0], ['cross', 10]] as const) {
        const source = await startServer(scratch as string, []);
        const cluster = await emptyCluster();
        try {
          const pairs = 1000;
          const load = new CrossSlotLoad(pairs, Math.ceil(CROSS_OPS / 10 / 3 / pairs) + 2);
          await pipelined(source.port, [load.preparation()]);
          const ckpt = await perSlotCounter(cluster, 'redis-sync:ckpt:');
          const markers = await perSlotCounter(cluster, `xdone:${name}:`);
          const seeds = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
          await r.deploy(clusterFlow(`x${name}`, source.port, seeds));
          await waitFor('the prepared keys on the cluster', async () => (await clusterUserKeys(ckpt.masters, ckpt.count, pairs * 3)) >= pairs * 3, 300_000, POLL_MS);
          await sleep(1000);
          function* batches(): Generator<string[]> {
            for (let done = 0; done < CROSS_OPS; done += CROSS_BATCH) {
              yield Array.from({ length: Math.min(CROSS_BATCH, CROSS_OPS - done) }, () => load.next(crossEvery));
            }
            const end = endMarkers(`xdone:${name}:`);
            for (let i = 0; i < end.length; i += CROSS_BATCH) yield end.slice(i, i + CROSS_BATCH);
          }
          const cpu0 = r.cpuSeconds();
          const t0 = performance.now();
          const w = await pipelined(source.port, batches());
          const writeS = (performance.now() - t0) / 1000;
          await waitFor('every end marker on the cluster', async () => (await markers.count()) >= 16384, 900_000, 200);
          const applyS = (performance.now() - t0) / 1000;
          const cpuS = r.cpuSeconds() - cpu0;
          await r.undeploy();
          ckpt.close();
          markers.close();
          runs[name] = {
            ops: w.sent, offered_ops_per_s: Math.round(w.sent / writeS), apply_ops_per_s: Math.round(w.sent / applyS), apply_s: r3(applyS),
            node_red_cpu_s: round(cpuS, 2), source_errors: w.errors, load1: round(os.loadavg()[0], 1),
          };
          log(`  ${name}: ${w.sent} ops (16384 of them end markers) written in ${writeS.toFixed(2)} s (${(w.sent / writeS / 1e3).toFixed(1)}k/s offered), all applied after ${applyS.toFixed(2)} s: ` +
            `${(w.sent / applyS / 1e3).toFixed(1)}k ops/s; Node-RED ${cpuS.toFixed(2)} CPU-s; load average ${os.loadavg()[0].toFixed(1)}${w.errors.length ? `; source errors ${w.errors.join(' | ')}` : ''}`);
        } finally {
          closeCounters();
          await r.undeploy().catch(() => undefined);
          await cluster.stop();
          await source.stop();
        }
      }
      const base = Number(runs.base.apply_ops_per_s);
      const cross = Number(runs.cross.apply_ops_per_s);
      Object.assign(result, { cross_slot_ops_per_s: cross, cross_slot_base_ops_per_s: base, cross_slot_ratio: round(cross / base, 2), cross_slot_runs: runs });
      log(`  cross-slot: ${(cross / 1e3).toFixed(1)}k ops/s with 10% moves vs ${(base / 1e3).toFixed(1)}k without = ${(cross / base).toFixed(2)} (target >= 0.5: ${cross / base >= 0.5 ? 'met' : 'NOT met'})`);
    });
  }

  // 5. backpressure
  if (PHASES.has('backpressure')) {
    await phase('backpressure', async () => {
      log('');
      log(`5. backpressure: ${LAG_RATE / 1000}k writes/s into the source, destination SIGSTOPped for ${PAUSE_S} s`);
      await settle(sc);
      const want = await sc.dbsize();
      const s = await deployAndSync(r, src, 'bp', true, want);
      result.backpressure_full_sync_max_rss_mb = round(mib(s.maxRssKb));
      log(`  full sync of ${want} keys ${s.seconds.toFixed(2)} s (Node-RED max RSS ${mib(s.maxRssKb).toFixed(1)} MiB)`);
      const spoolDir = path.join(r.userDir, 'redis-sync', s.srcId, 'spool');
      const syncFull0 = Number(field(await sc.info('stats'), 'sync_full'));
      let load: PacedLoad | null = null;
      try {
        await waitFor('bp streaming', () => s.watch.latest?.phase === 'streaming', 60_000);
        await sleep(1000);
        load = new PacedLoad({ srcPort: src.port, dstPort: s.dst.port, batch: LAG_RATE / 100, intervalMs: 10 });
        await load.connect();
        load.start();
        await sleep(3000);
        const before = load.stats();
        const rssBefore = rss.sample();
        const pauseWin = rss.open();
        s.watch.mark();
        let maxSpoolDir = 0;
        const spoolTimer = setInterval(() => (maxSpoolDir = Math.max(maxSpoolDir, dirBytes(spoolDir))), 250);
        process.kill(s.dst.pid, 'SIGSTOP');
        paused.add(s.dst.pid);
        const pausedAt = performance.now();
        log(`  destination paused (pid ${s.dst.pid}); Node-RED RSS ${mib(rssBefore).toFixed(1)} MiB; lag before the pause p99 ${before.p99} ms`);
        for (let i = 0; i < PAUSE_S; i++) {
          await sleep(1000);
          if (i % 5 === 4) log(`    paused ${i + 1} s: Node-RED RSS ${mib(rss.last).toFixed(1)} MiB, spool ${mb(dirBytes(spoolDir)).toFixed(1)} MB on disk (progress: ${mb(Number(s.watch.latest?.spoolBytes ?? 0)).toFixed(1)} MB, lag ${s.watch.latest?.lagMs} ms)`);
        }
        const rssPaused = pauseWin.close();
        const catchWin = rss.open();
        const spoolProgressMax = s.watch.maxSpool;
        process.kill(s.dst.pid, 'SIGCONT');
        paused.delete(s.dst.pid);
        const contAt = performance.now();
        let caughtUpAt: number | null = null;
        const off = load.onProbe((p) => {
          if (caughtUpAt === null && p.arrivedAt !== null && p.arrivedAt > contAt && (p.lagMs as number) < 100) caughtUpAt = p.arrivedAt;
        });
        try {
          await waitFor('catch-up after SIGCONT (a probe with lag < 100 ms)', () => caughtUpAt !== null, 300_000, 50);
        } finally {
          off();
          clearInterval(spoolTimer);
        }
        const catchupS = ((caughtUpAt as unknown as number) - contAt) / 1000;
        await sleep(3000);
        const after = load.stats(performance.now() - 3000);
        await load.stop();
        await load.waitProbes(60_000);
        const rssCatchup = catchWin.close();
        const offered = load.acked / ((load.stoppedAt - load.startedAt) / 1000);
        const syncFull1 = Number(field(await sc.info('stats'), 'sync_full'));
        const drops = s.watch.maxReconnects;
        const paused_s = (contAt - pausedAt) / 1000;
        Object.assign(result, {
          backpressure_rss_mb: round(mib(rssPaused)),
          backpressure_rss_before_mb: round(mib(rssBefore)),
          backpressure_rss_catchup_mb: round(mib(rssCatchup)),
          backpressure_spool_mb: round(mb(Math.max(maxSpoolDir, spoolProgressMax))),
          backpressure_spool_dir_mb: round(mb(maxSpoolDir)),
          backpressure_spool_progress_mb: round(mb(spoolProgressMax)),
          backpressure_pause_s: round(paused_s, 1),
          backpressure_offered_writes_per_s: Math.round(offered),
          backpressure_catchup_s: round(catchupS, 2),
          backpressure_link_reconnects: drops,
          backpressure_source_full_syncs: syncFull1 - syncFull0,
          backpressure_lag_after_catchup_p99_ms: after.p99,
        });
        log(`  paused ${paused_s.toFixed(1)} s: Node-RED max RSS ${mib(rssPaused).toFixed(1)} MiB (before ${mib(rssBefore).toFixed(1)}), spool max ${mb(maxSpoolDir).toFixed(1)} MB on disk ` +
          `(progress.spoolBytes max ${mb(spoolProgressMax).toFixed(1)} MB); link reconnects ${drops}, new full syncs at the source ${syncFull1 - syncFull0}`);
        log(`  caught up ${catchupS.toFixed(2)} s after SIGCONT under the same ${(offered / 1e3).toFixed(1)}k writes/s (max RSS meanwhile ${mib(rssCatchup).toFixed(1)} MiB); lag p99 over the last 3 s ${after.p99} ms`);
        await r.undeploy();
        const v = await verify(sc, s.dc);
        result.backpressure_verified = v.digestMatch && v.srcKeys === v.dstKeys;
        log(`  verified: ${JSON.stringify(v)}`);
      } finally {
        if (paused.has(s.dst.pid)) {
          process.kill(s.dst.pid, 'SIGCONT');
          paused.delete(s.dst.pid);
        }
        await load?.close();
        await r.undeploy().catch(() => undefined);
        await teardown(s);
      }
    });
  }

  // 4. peak RSS over the whole run
  rss.sample();
  const end = r.memory();
  result.peak_rss_mb = round(mib(end.hwmKb));
  result.peak_rss_sampled_mb = round(mib(rss.overall));
  result.memory_at_peak_progress_mb = memAtPeak;
  result.memory_at_first_progress_mb = memAtFirst;
  log('');
  log(`4. Node-RED peak RSS (VmHWM) over the whole run: ${mib(end.hwmKb).toFixed(1)} MiB (target <= 300: ${mib(end.hwmKb) <= 300 ? 'met' : 'NOT met'}); sampled max VmRSS ${mib(rss.overall).toFixed(1)} MiB; ` +
    `at the progress line with the highest RSS (${memAtPeak?.during ?? '?'}): ${JSON.stringify(memAtPeak)} MiB`);
  rss.stop();
  await r.stop();
  red = null;
  if (r.problems.length > 0) {
    log(`Node-RED logged ${r.problems.length} warnings/errors, first: ${r.problems.slice(0, 5).join(' | ')}`);
  }
  result.node_red_warnings = r.problems.length;
  if (lastErrors.size > 0) result.source_errors = [...lastErrors].slice(0, 5);

  if (PROF) {
    const files = readdirSync(PROF).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(PROF, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (files[0]) {
      log('');
      log(`CPU profile ${files[0]}`);
      for (const p of phases) {
        log(`--- phase ${p.name} (${p.fromS.toFixed(1)}-${p.toS.toFixed(1)} s of the profile)`);
        console.log(formatSummary(summarizeProfile(files[0], 25, p.fromS, p.toS)));
      }
      result.cpu_profile = files[0];
    }
  }

  sc.disconnect();
  await src.stop();
  report();
}

main()
  .catch((err: unknown) => {
    console.error(`bench:e2e failed: ${(err as Error).stack ?? String(err)}`);
    errors.push(`fatal: ${(err as Error).message}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const pid of paused) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    closeCounters();
    await red?.stop().catch(() => undefined);
    await stopAllServers();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = null;
    report();
  });
