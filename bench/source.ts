/**
 * Replica source benchmark: `npm run bench:source`. Prints figures; asserts no timing (it
 * fails only when a run is wrong: keys missing, operations lost, a server or child failing).
 *
 * 1. Full sync of the reference data set (bench/support/populate.lua; 1,000,000 keys,
 *    VALSIZE 100, 57 MB RDB with Redis 7.0) from a redis-server with
 *    `repl-diskless-sync-delay 0`, against `redis-cli --rdb` of the same server in the same
 *    run, passes interleaved (baseline, ours, baseline, ours, …), median of each:
 *    - ours: a ReplicaSource (node defaults: decodeValues off, bigKeyBytes 1 MiB, batchOps
 *      1000, batchLatencyMs 20) in a fresh child process (bench/support/source-child.ts) with
 *      a fresh dir, onBatch counting and discarding; start() -> the 'snapshot-end' operation.
 *      The key count must be exactly the data set's.
 *    - once more with decodeValues on;
 *    - the same with `repl-diskless-sync no` (disk-based: the master BGSAVEs first);
 *    - in each pass also the transport alone (ReplicaLink appending to a Spool, nothing
 *      parsing): how much of the gap to redis-cli is node receiving at all, how much the
 *      parse/decode/batching that shares its thread and the 2 cores with the master's fork.
 *    redis-cli >= 6.2 fsyncs its output file, which our spool does not do: the baseline pays
 *    for one fsync of the RDB.
 * 2. Stream: with the session streaming, `redis-benchmark -t set,incr,lpush,hset -P 16 -r 100000
 *    -n N -q` drives writes; the operations that reach onBatch are counted against the
 *    master's own count of those writes (INFO commandstats), and their rate is total ops /
 *    (last op - first op), taken once the session has handed on everything up to the master's
 *    offset. Lag (progress.lagBytes / lagMs) is sampled every 50 ms; the maximum is reported.
 *    A stream rate at the benchmark's own rate means the session kept up; the engine's ceiling
 *    is the next figure.
 * 3. Decoder alone: ReplicationDecoder fed a pre-built stream of 1M commands (SET only, as
 *    redis-benchmark -t set sends them, and the set/incr/lpush/hset mix) as 64 KB 'stream'
 *    records, in this process, 1 warm-up + 3 passes, median ops/s.
 * 4. Peak RSS: each child reports its own VmHWM (/proc/self/status; getrusage's maxRSS of a
 *    child counts the parent's RSS at fork). Also for a source holding ONE hash of 10,000,000
 *    fields x 100 B (1.11 GB RDB, from bench:rdb's cache), with a redis-cli --rdb baseline,
 *    decodeValues off and on, and (for comparison) with a small batchOps.
 * 5. A final line `RESULT {...}` with every figure as JSON.
 *
 * Data sets come from bench/support/datasets.ts (cached in .bench/; the 1M-key RDB takes
 * ~15 s to generate the first time, the big hash ~55 s). A server loads a cached RDB through
 * a hard link as its dump.rdb and `DEBUG RELOAD NOSAVE` (a later BGSAVE renames a new file
 * over the link, so the cached file is never written). Every server is stopped at the end,
 * on failure and on Ctrl-C. Memory: the 1M-key server ~300 MB, the big-hash server ~1.7 GB.
 * A run takes about 4 minutes on 2 cores.
 *
 * Knobs (environment): BENCH_SOURCE_KEYS (1000000), BENCH_SOURCE_VALSIZE (100),
 * BENCH_SOURCE_PASSES (5), BENCH_SOURCE_DISK (1: also disk-based; 0: skip),
 * BENCH_SOURCE_BENCH_N (1000000 requests per redis-benchmark test, 4 tests),
 * BENCH_SOURCE_DECODER_OPS (1000000), BENCH_SOURCE_BIGHASH (1; 0 skips part 4's big hash),
 * BENCH_SOURCE_BIGHASH_BATCHOPS (4: one more big-hash run with this batchOps, comma-separated,
 * empty for none; the node's batchBytes does not bound batches of big-key chunks, so batchOps does),
 * BENCH_RDB_CACHE (<repo>/.bench), BENCH_SOURCE_LIB (a compiled lib, e.g. dist/lib after
 * `npm run build`, instead of the TypeScript sources through tsx),
 * BENCH_SOURCE_PROF (a directory: children run with --cpu-prof and write profiles there).
 * MB here is 10^6 bytes; RSS figures are MiB (2^20 bytes), as the 256 MB target is meant.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { linkSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { LinkRecord } from '../lib/replication/link';
import { parseInfo } from '../lib/server/info';
import { ensureBigHashRdb, ensureReferenceRdb, type CachedRdb } from './support/datasets';
import { startServer, stopAllServers, type BenchServer } from './support/redis';
import type { SourceChildArgs, SourceChildReport } from './support/source-child';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');

function intEnv(name: string, fallback: number, min = 1): number {
  const text = process.env[name];
  const v = text === undefined || text === '' ? fallback : Number(text);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name}=${text} is not an integer >= ${min}`);
  return v;
}
const KEYS = intEnv('BENCH_SOURCE_KEYS', 1_000_000);
const VALSIZE = intEnv('BENCH_SOURCE_VALSIZE', 100);
const PASSES = intEnv('BENCH_SOURCE_PASSES', 5);
const DISK = intEnv('BENCH_SOURCE_DISK', 1, 0) > 0;
const BENCH_N = intEnv('BENCH_SOURCE_BENCH_N', 1_000_000);
const DECODER_OPS = intEnv('BENCH_SOURCE_DECODER_OPS', 1_000_000);
const BIGHASH = intEnv('BENCH_SOURCE_BIGHASH', 1, 0) > 0;
/** Extra big-hash runs with these batchOps (comma-separated; empty for none): how batch size drives the peak. */
const BIGHASH_BATCH_OPS = (process.env.BENCH_SOURCE_BIGHASH_BATCHOPS ?? '4').split(',').filter((x) => x !== '').map((x) => {
  const v = Number(x);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`BENCH_SOURCE_BIGHASH_BATCHOPS: "${x}" is not a positive integer`);
  return v;
});
const HASH_FIELDS = 10_000_000;
const HASH_VALSIZE = 100;
const LIB = process.env.BENCH_SOURCE_LIB === undefined ? path.join(ROOT, 'lib') : path.resolve(ROOT, process.env.BENCH_SOURCE_LIB);
const PROF = process.env.BENCH_SOURCE_PROF === undefined ? undefined : path.resolve(process.env.BENCH_SOURCE_PROF);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ReplicationDecoder } = require(path.join(LIB, 'replication', 'decoder')) as typeof import('../lib/replication/decoder');

/** What the redis-replica-source node passes by default. */
const NODE_DEFAULTS = { bigKeyBytes: 1024 * 1024, batchOps: 1000, batchLatencyMs: 20 };
const BENCH_TESTS = 'set,incr,lpush,hset';

const log = (msg: string): void => console.log(msg);
const mb = (bytes: number): number => bytes / 1e6;
const mib = (kb: number): number => kb / 1024;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

let childProc: ChildProcess | undefined;
const scratch: string[] = [];
process.on('exit', () => {
  childProc?.kill('SIGKILL');
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping servers`);
    process.exit(130); // runs the 'exit' listeners: servers, child, scratch dirs
  });
}

function scratchDir(prefix: string): string {
  mkdirSync(CACHE, { recursive: true });
  const d = mkdtempSync(path.join(CACHE, prefix));
  scratch.push(d);
  return d;
}

function dropScratch(d: string): void {
  rmSync(d, { recursive: true, force: true });
  const i = scratch.indexOf(d);
  if (i >= 0) scratch.splice(i, 1);
}

// ---- servers ----

/** A redis-server with a cached RDB loaded (hard link as dump.rdb + DEBUG RELOAD NOSAVE). */
async function serverWith(rdb: CachedRdb, diskless: boolean): Promise<{ server: BenchServer; loadS: number }> {
  const server = await startServer(CACHE, [
    '--enable-debug-command', 'yes',
    '--repl-diskless-sync', diskless ? 'yes' : 'no',
    '--repl-diskless-sync-delay', '0',
    // a 1.1 GB RDB to a replica that parses as it reads must not trip the output buffer limit
    '--client-output-buffer-limit', 'replica 0 0 0',
  ]);
  const dump = path.join(server.dir, 'dump.rdb');
  try {
    linkSync(rdb.path, dump);
  } catch {
    copyFileSync(rdb.path, dump);
  }
  const t0 = performance.now();
  await server.cli('DEBUG', 'RELOAD', 'NOSAVE');
  return { server, loadS: (performance.now() - t0) / 1000 };
}

function infoField(info: string, name: string): string | undefined {
  return parseInfo(info)[name];
}

/** Waits until the master has no replica, no fork and no BGSAVE left from the last pass. */
async function settle(server: BenchServer): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = await server.cli('INFO', 'all');
    const idle = infoField(info, 'connected_slaves') === '0' && infoField(info, 'rdb_bgsave_in_progress') === '0';
    if (idle) break;
    if (Date.now() > deadline) throw new Error(`server ${server.port} still busy after 30 s (replicas ${infoField(info, 'connected_slaves')}, bgsave ${infoField(info, 'rdb_bgsave_in_progress')})`);
    await sleep(50);
  }
  await sleep(300); // let the fork's exit and page-cache writeback settle
}

// ---- baseline: redis-cli --rdb ----

async function redisCliRdb(server: BenchServer): Promise<{ seconds: number; bytes: number }> {
  const out = path.join(server.dir, `cli-${Date.now()}.rdb`);
  const t0 = performance.now();
  await execFileAsync('redis-cli', ['-h', '127.0.0.1', '-p', String(server.port), '--rdb', out], { maxBuffer: 1 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  const bytes = statSync(out).size;
  rmSync(out, { force: true });
  return { seconds, bytes };
}

// ---- ours: a ReplicaSource in a child ----

function runChild(args: Omit<SourceChildArgs, 'lib' | 'dir'>, label: string): Promise<SourceChildReport> {
  const script = path.join(__dirname, 'support', 'source-child.ts');
  const dir = scratchDir('source-');
  const full: SourceChildArgs = { ...args, lib: LIB, dir };
  const prof = PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`];
  return new Promise<SourceChildReport>((resolve, reject) => {
    const child = spawn(process.execPath, [...prof, '--import', 'tsx', script, JSON.stringify(full)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    childProc = child;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      childProc = undefined;
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') reject(new Error(`source child (${label}) failed (${signal ?? `exit ${code}`}): ${out}`));
      else resolve(JSON.parse(line) as SourceChildReport);
    });
  }).finally(() => dropScratch(dir));
}

function checkKeys(r: SourceChildReport, want: number, label: string): void {
  if (r.keys !== want) throw new Error(`${label}: the source handed on ${r.keys} keys, expected ${want}`);
}

function fmtChild(r: SourceChildReport): string {
  const recv = r.receivedAllS === null ? '?' : r.receivedAllS.toFixed(2);
  return `${r.fullSyncS.toFixed(3)} s (snapshot-begin at ${r.snapshotBeginS.toFixed(3)} s, last RDB byte spooled at ~${recv} s), ${r.keys} keys, ` +
    `${(mb(r.rdbBytes) / r.fullSyncS).toFixed(1)} MB/s, ${(r.keys / r.fullSyncS / 1e6).toFixed(2)} M keys/s, ` +
    `peak RSS ${mib(r.peakRssKb).toFixed(1)} MiB (${mib(r.baselineRssKb).toFixed(1)} at start), max spool ${mb(r.maxSpoolBytes).toFixed(1)} MB on disk / ${r.maxUnreadBytes === null ? '?' : mb(r.maxUnreadBytes).toFixed(1)} MB unread, ` +
    `largest batch ${r.maxBatchOps} ops / ${mb(r.maxBatchBytes).toFixed(1)} MB, ` +
    `cpu user ${r.userCpuS.toFixed(2)} s sys ${r.systemCpuS.toFixed(2)} s`;
}

interface SyncSeries {
  baseline: number[];
  ours: SourceChildReport[];
  /** ReplicaLink + spool append only (no parsing): what this process's transport alone achieves. */
  link: SourceChildReport[];
}

async function fullSyncSeries(server: BenchServer, label: string, passes: number, keys: number): Promise<SyncSeries> {
  const s: SyncSeries = { baseline: [], ours: [], link: [] };
  for (let i = 0; i < passes; i++) {
    await settle(server);
    const b = await redisCliRdb(server);
    s.baseline.push(b.seconds);
    log(`  ${label} pass ${i + 1}: redis-cli --rdb ${b.seconds.toFixed(3)} s (${mb(b.bytes).toFixed(1)} MB)`);
    await settle(server);
    const r = await runChild({ scenario: 'fullsync', port: server.port, decodeValues: false, ...NODE_DEFAULTS, timeoutMs: 300_000 }, `${label}-raw-${i + 1}`);
    checkKeys(r, keys, `${label} pass ${i + 1}`);
    s.ours.push(r);
    log(`  ${label} pass ${i + 1}: ReplicaSource    ${fmtChild(r)}`);
    await settle(server);
    const l = await runChild({ scenario: 'link', port: server.port, decodeValues: false, ...NODE_DEFAULTS, timeoutMs: 300_000 }, `${label}-link-${i + 1}`);
    if (l.rdbBytes !== r.rdbBytes) throw new Error(`${label} pass ${i + 1}: the link alone received ${l.rdbBytes} RDB bytes, the source ${r.rdbBytes}`);
    s.link.push(l);
    log(`  ${label} pass ${i + 1}: link+spool only ${l.fullSyncS.toFixed(3)} s (no parsing; cpu user ${l.userCpuS.toFixed(2)} s sys ${l.systemCpuS.toFixed(2)} s)`);
  }
  const b = median(s.baseline);
  const o = median(s.ours.map((r) => r.fullSyncS));
  const l = median(s.link.map((r) => r.fullSyncS));
  log(`  ${label}: median redis-cli --rdb ${b.toFixed(3)} s, ReplicaSource ${o.toFixed(3)} s, ratio ${(o / b).toFixed(2)} ` +
    `(target <= 1.5: ${o / b <= 1.5 ? 'met' : 'NOT met'}); link+spool only ${l.toFixed(3)} s = ${(l / b).toFixed(2)}x; ` +
    `per-pass ratios ${s.ours.map((r, i) => (r.fullSyncS / s.baseline[i]).toFixed(2)).join(' ')}`);
  return s;
}

function streamFigures(r: SourceChildReport, label: string): NonNullable<SourceChildReport['stream']> {
  const s = r.stream as NonNullable<SourceChildReport['stream']>;
  if (s.ops !== s.masterWrites) throw new Error(`${label}: ${s.ops} operations reached onBatch, but the master executed ${s.masterWrites} writes`);
  const opsS = s.ops / s.firstToLastOpS;
  log(`  ${label}: redis-benchmark ${s.benchOutput} (wall ${s.benchWallS.toFixed(2)} s, ${(s.masterWrites / s.benchWallS / 1e6).toFixed(3)} M writes/s into the master)`);
  log(`  ${label}: onBatch got ${s.ops} operations (= the master's ${s.masterWrites} writes) in ${s.firstToLastOpS.toFixed(3)} s first to last = ` +
    `${(opsS / 1e6).toFixed(3)} M ops/s (target >= 0.3: ${opsS >= 300_000 ? 'met' : 'NOT met'}); caught up ${s.catchUpAfterBenchS.toFixed(3)} s after the benchmark ended`);
  return s;
}

// ---- decoder alone ----

function buildStream(ops: number, mixed: boolean): Buffer {
  // What redis-benchmark -r 100000 sends: key:<12 digits>, 3-byte values "xxx".
  const parts: string[] = [];
  let rnd = 12345;
  for (let i = 0; i < ops; i++) {
    rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
    const n = String(rnd % 100000).padStart(12, '0');
    switch (mixed ? i % 4 : 0) {
      case 0:
        parts.push(`*3\r\n$3\r\nSET\r\n$16\r\nkey:${n}\r\n$3\r\nxxx\r\n`);
        break;
      case 1:
        parts.push(`*2\r\n$4\r\nINCR\r\n$20\r\ncounter:${n}\r\n`);
        break;
      case 2:
        parts.push('*3\r\n$5\r\nLPUSH\r\n$6\r\nmylist\r\n$3\r\nxxx\r\n');
        break;
      default:
        parts.push(`*4\r\n$4\r\nHSET\r\n$6\r\nmyhash\r\n$20\r\nelement:${n}\r\n$3\r\nxxx\r\n`);
        break;
    }
  }
  return Buffer.from(`*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n${parts.join('')}`, 'latin1');
}

function decoderPass(stream: Buffer, piece: number): { seconds: number; ops: number } {
  const t0 = performance.now();
  const d = new ReplicationDecoder({ shard: 'standalone' });
  d.push({ kind: 'continue', replid: 'f'.repeat(40), offset: 0 } as LinkRecord);
  let ops = 0;
  for (let off = 0; off < stream.length; off += piece) {
    ops += d.push({ kind: 'stream', data: stream.subarray(off, Math.min(stream.length, off + piece)) }).length;
  }
  return { seconds: (performance.now() - t0) / 1000, ops };
}

function decoderSeries(label: string, stream: Buffer, want: number): { opsS: number; mbS: number } {
  const piece = 64 * 1024;
  decoderPass(stream, piece); // warm-up
  const rates: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const r = decoderPass(stream, piece);
    if (r.ops !== want) throw new Error(`decoder (${label}) produced ${r.ops} operations, expected ${want}`);
    rates.push(r.ops / r.seconds);
    log(`  ${label.padEnd(24)} pass ${i + 1}: ${(r.ops / r.seconds / 1e6).toFixed(3)} M ops/s (${r.seconds.toFixed(3)} s, ${(mb(stream.length) / r.seconds).toFixed(1)} MB/s)`);
  }
  const opsS = median(rates);
  log(`  ${label.padEnd(24)} median ${(opsS / 1e6).toFixed(3)} M ops/s (${mb(stream.length).toFixed(1)} MB stream, 64 KB records)`);
  return { opsS, mbS: (mb(stream.length) * opsS) / want };
}

// ---- main ----

async function main(): Promise<void> {
  log(`bench:source  node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ` +
    `${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()}`);
  log(`engine under test: ${LIB}${process.env.BENCH_SOURCE_LIB === undefined ? ' (TypeScript sources via tsx)' : ''}; ` +
    `node defaults ${JSON.stringify(NODE_DEFAULTS)}; MB = 10^6 bytes, RSS in MiB${PROF ? `; CPU profiles -> ${PROF}` : ''}`);

  const ref = await ensureReferenceRdb(CACHE, KEYS, VALSIZE, log);
  const hash = BIGHASH ? await ensureBigHashRdb(CACHE, HASH_FIELDS, HASH_VALSIZE, log) : null;
  await stopAllServers();

  // 3 first: no server runs while the decoder is measured.
  log('');
  log(`decoder alone: ReplicationDecoder, ${DECODER_OPS} commands, 1 warm-up + ${PASSES} passes (in this process)`);
  const decSet = decoderSeries('SET only', buildStream(DECODER_OPS, false), DECODER_OPS);
  const decMix = decoderSeries('set/incr/lpush/hset mix', buildStream(DECODER_OPS, true), DECODER_OPS);

  log('');
  log(`1. full sync: ${ref.path} — reference data set, ${KEYS} keys, VALSIZE ${VALSIZE}, ${mb(ref.bytes).toFixed(1)} MB${ref.reused ? ' (cached)' : ''}`);
  const { server, loadS } = await serverWith(ref, true);
  const dbsize = Number(await server.cli('DBSIZE'));
  if (dbsize !== KEYS) throw new Error(`the source holds ${dbsize} keys after loading ${ref.path}, expected ${KEYS}`);
  log(`  source redis-server :${server.port} loaded ${dbsize} keys in ${loadS.toFixed(1)} s; used_memory ${infoField(await server.cli('INFO', 'memory'), 'used_memory_human')}`);

  const diskless = await fullSyncSeries(server, 'diskless', PASSES, KEYS);
  await settle(server);
  const decoded = await runChild({ scenario: 'fullsync', port: server.port, decodeValues: true, ...NODE_DEFAULTS, timeoutMs: 300_000 }, 'diskless-decoded');
  checkKeys(decoded, KEYS, 'decodeValues on');
  log(`  diskless, decodeValues on: ${fmtChild(decoded)}`);

  let disk: SyncSeries | null = null;
  if (DISK) {
    await server.cli('CONFIG', 'SET', 'repl-diskless-sync', 'no');
    disk = await fullSyncSeries(server, 'disk-based', PASSES, KEYS);
    await server.cli('CONFIG', 'SET', 'repl-diskless-sync', 'yes');
  }

  log('');
  const benchArgs = ['-t', BENCH_TESTS, '-P', '16', '-r', '100000', '-n', String(BENCH_N), '-q'];
  log(`2. stream: redis-benchmark ${benchArgs.join(' ')} while the session streams (after a full sync of the same source)`);
  await settle(server);
  const st = await runChild({ scenario: 'stream', port: server.port, decodeValues: false, ...NODE_DEFAULTS, benchArgs, timeoutMs: 600_000 }, 'stream');
  checkKeys(st, KEYS, 'stream run');
  const s = streamFigures(st, 'stream');
  const streamOpsS = s.ops / s.firstToLastOpS;
  log(`  lag max: progress.lagMs ${s.lagMaxMs} ms, progress.lagBytes ${mb(s.lagMaxBytes).toFixed(2)} MB (sampled every 50 ms); ` +
    `age of the oldest byte not handed on ${s.lagAgeMaxMs} ms (from the samples of progress.received; +-50 ms)`);
  log(`  spool max ${mb(s.maxSpoolBytes).toFixed(1)} MB, ${s.batches} batches; ` +
    `stream-phase cpu user ${s.streamUserCpuS.toFixed(2)} s sys ${s.streamSystemCpuS.toFixed(2)} s; peak RSS of the whole run ${mib(st.peakRssKb).toFixed(1)} MiB`);
  log(`  drain: the same load held in the spool (onBatch blocked until the benchmark ended), then drained with no benchmark running:`);
  await settle(server);
  const keysNow = Number(await server.cli('DBSIZE')); // the first benchmark run added its own keys
  const dr = await runChild({ scenario: 'drain', port: server.port, decodeValues: false, ...NODE_DEFAULTS, benchArgs, timeoutMs: 600_000 }, 'drain');
  checkKeys(dr, keysNow, 'drain run');
  const d = streamFigures(dr, 'drain');
  const drainOpsS = d.ops / d.firstToLastOpS;
  log(`  drain: spool max ${mb(d.maxSpoolBytes).toFixed(1)} MB, cpu user ${d.streamUserCpuS.toFixed(2)} s sys ${d.streamSystemCpuS.toFixed(2)} s (benchmark + drain); peak RSS of the whole run ${mib(dr.peakRssKb).toFixed(1)} MiB`);
  await server.stop();

  let big: SourceChildReport | null = null;
  let bigDecoded: SourceChildReport | null = null;
  let bigCli: { seconds: number; bytes: number } | null = null;
  const bigBatch: Array<{ batchOps: number; peakRssMb: number; seconds: number }> = [];
  if (hash) {
    log('');
    log(`4. one big key: ${hash.path} — one hash of ${HASH_FIELDS} fields x ${HASH_VALSIZE} B, ${mb(hash.bytes).toFixed(1)} MB${hash.reused ? ' (cached)' : ''}; diskless`);
    const { server: hs, loadS: hload } = await serverWith(hash, true);
    const hlen = Number(await hs.cli('HLEN', 'bighash'));
    if (hlen !== HASH_FIELDS) throw new Error(`bighash has ${hlen} fields, expected ${HASH_FIELDS}`);
    log(`  source redis-server :${hs.port} loaded in ${hload.toFixed(1)} s; used_memory ${infoField(await hs.cli('INFO', 'memory'), 'used_memory_human')}`);
    await settle(hs);
    bigCli = await redisCliRdb(hs);
    log(`  redis-cli --rdb ${bigCli.seconds.toFixed(2)} s (${mb(bigCli.bytes).toFixed(1)} MB)`);
    await settle(hs);
    big = await runChild({ scenario: 'fullsync', port: hs.port, decodeValues: false, ...NODE_DEFAULTS, timeoutMs: 600_000 }, 'bighash-raw');
    checkKeys(big, 1, 'big hash');
    log(`  ReplicaSource, decodeValues off: ${fmtChild(big)}; ${big.chunkOps} chunk operations`);
    await settle(hs);
    bigDecoded = await runChild({ scenario: 'fullsync', port: hs.port, decodeValues: true, ...NODE_DEFAULTS, timeoutMs: 600_000 }, 'bighash-decoded');
    checkKeys(bigDecoded, 1, 'big hash, decoded');
    log(`  ReplicaSource, decodeValues on:  ${fmtChild(bigDecoded)}; ${bigDecoded.chunkOps} chunk operations`);
    log(`  target peak RSS < 256 MiB: ${mib(big.peakRssKb) < 256 ? 'met' : 'NOT met'} (off), ${mib(bigDecoded.peakRssKb) < 256 ? 'met' : 'NOT met'} (on)`);
    for (const batchOps of BIGHASH_BATCH_OPS) {
      await settle(hs);
      const r = await runChild({ scenario: 'fullsync', port: hs.port, decodeValues: false, ...NODE_DEFAULTS, batchOps, timeoutMs: 600_000 }, `bighash-batch${batchOps}`);
      checkKeys(r, 1, `big hash, batchOps ${batchOps}`);
      log(`  ReplicaSource, decodeValues off, batchOps ${batchOps}: ${fmtChild(r)}`);
      bigBatch.push({ batchOps, peakRssMb: round(mib(r.peakRssKb)), seconds: round(r.fullSyncS, 2) });
    }
    await hs.stop();
  }

  const fullS = median(diskless.ours.map((r) => r.fullSyncS));
  const cliS = median(diskless.baseline);
  const peak = Math.max(...diskless.ours.map((r) => r.peakRssKb));
  log('');
  log(`summary: full sync ${fullS.toFixed(3)} s vs redis-cli --rdb ${cliS.toFixed(3)} s = ${(fullS / cliS).toFixed(2)}x (target <= 1.5x); ` +
    `stream ${(streamOpsS / 1e6).toFixed(3)} M ops/s (benchmark drove ${(s.masterWrites / s.benchWallS / 1e6).toFixed(3)}), drained from the spool ${(drainOpsS / 1e6).toFixed(3)} M ops/s, decoder alone ${(decSet.opsS / 1e6).toFixed(3)} / ${(decMix.opsS / 1e6).toFixed(3)} M ops/s (target >= 0.3); ` +
    `peak RSS ${mib(peak).toFixed(1)} MiB${big ? `, big hash ${mib(big.peakRssKb).toFixed(1)} MiB` : ''} (target < 256)`);
  const result = {
    keys: KEYS,
    rdb_mb: round(mb(ref.bytes)),
    passes: PASSES,
    full_sync_s: round(fullS, 3),
    full_sync_s_all: diskless.ours.map((r) => round(r.fullSyncS, 3)),
    redis_cli_rdb_s: round(cliS, 3),
    redis_cli_rdb_s_all: diskless.baseline.map((x) => round(x, 3)),
    ratio: round(fullS / cliS, 2),
    link_only_s: round(median(diskless.link.map((r) => r.fullSyncS)), 3),
    link_only_ratio: round(median(diskless.link.map((r) => r.fullSyncS)) / cliS, 2),
    full_sync_decoded_s: round(decoded.fullSyncS, 3),
    ratio_decoded: round(decoded.fullSyncS / cliS, 2),
    disk_full_sync_s: disk ? round(median(disk.ours.map((r) => r.fullSyncS)), 3) : null,
    disk_redis_cli_rdb_s: disk ? round(median(disk.baseline), 3) : null,
    disk_ratio: disk ? round(median(disk.ours.map((r) => r.fullSyncS)) / median(disk.baseline), 2) : null,
    stream_ops: s.ops,
    stream_ops_s: Math.round(streamOpsS),
    stream_bench_writes_s: Math.round(s.masterWrites / s.benchWallS),
    stream_catch_up_s: round(s.catchUpAfterBenchS, 3),
    stream_drain_ops_s: Math.round(drainOpsS),
    lag_max_ms: s.lagMaxMs,
    lag_max_bytes: s.lagMaxBytes,
    lag_age_max_ms: s.lagAgeMaxMs,
    decoder_ops_s: Math.round(decSet.opsS),
    decoder_mix_ops_s: Math.round(decMix.opsS),
    decoder_mb_s: round(decSet.mbS),
    peak_rss_mb: round(mib(peak)),
    peak_rss_decoded_mb: round(mib(decoded.peakRssKb)),
    stream_peak_rss_mb: round(mib(st.peakRssKb)),
    baseline_rss_mb: round(mib(diskless.ours[0].baselineRssKb)),
    bighash_rdb_mb: hash ? round(mb(hash.bytes)) : null,
    bighash_full_sync_s: big ? round(big.fullSyncS, 2) : null,
    bighash_redis_cli_rdb_s: bigCli ? round(bigCli.seconds, 2) : null,
    bighash_peak_rss_mb: big ? round(mib(big.peakRssKb)) : null,
    bighash_decoded_full_sync_s: bigDecoded ? round(bigDecoded.fullSyncS, 2) : null,
    bighash_decoded_peak_rss_mb: bigDecoded ? round(mib(bigDecoded.peakRssKb)) : null,
    bighash_max_batch_mb: big ? round(mb(big.maxBatchBytes)) : null,
    bighash_small_batches: bigBatch,
  };
  log('');
  log(`RESULT ${JSON.stringify(result)}`);
}

main()
  .catch((err: unknown) => {
    console.error(`bench:source failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => stopAllServers());
