/**
 * One ReplicaSource run in a fresh process, for bench/source.ts, which reads the last line of
 * stdout (one JSON object). Running in a child makes the peak RSS (VmHWM) this run's alone
 * and gives every pass a cold start, as a node that is deployed gets.
 *
 *   node --import tsx bench/support/source-child.ts '<json SourceChildArgs>'
 *
 * Scenarios:
 * - 'fullsync': start() -> the 'snapshot-end' operation; onBatch counts and discards.
 * - 'stream': the same, then drives writes with redis-benchmark while the session streams,
 *   samples progress (lag) every 50 ms, waits until the session has handed on everything up
 *   to the master's offset, and reports how fast operations arrived at onBatch.
 * - 'link': the transport alone, for comparison: a ReplicaLink whose records are appended to a
 *   Spool (what the session does on receipt) and never read; start -> 'rdb-end'.
 * - 'drain': like 'stream', but onBatch holds the first stream batch until redis-benchmark has
 *   finished, so the whole write load waits in the spool; the rate is then how fast the
 *   session drains it (spool read + decode + batching), with no benchmark competing for CPU.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Operation } from '../../lib/ops/operation';
import { parseInfo } from '../../lib/server/info';

const execFileAsync = promisify(execFile);

export interface SourceChildArgs {
  scenario: 'fullsync' | 'stream' | 'drain' | 'link';
  /** Directory holding replication/source.(ts|js): lib/ or a compiled dist/lib. */
  lib: string;
  port: number;
  /** The source's working directory (spool, positions); must be fresh. */
  dir: string;
  decodeValues: boolean;
  bigKeyBytes: number;
  batchOps: number;
  batchLatencyMs: number;
  /** redis-benchmark arguments after -h/-p (stream scenario). */
  benchArgs?: string[];
  /** Give up after this long (ms). */
  timeoutMs: number;
}

export interface SourceChildReport {
  scenario: SourceChildArgs['scenario'];
  decodeValues: boolean;
  /** start() -> 'snapshot-begin' (handshake, PSYNC, the master's fork) and -> 'snapshot-end'. */
  snapshotBeginS: number;
  /** start() -> the last RDB byte was in the spool (spool writtenBytes stopped growing; 20 ms resolution), or null. */
  receivedAllS: number | null;
  /** Largest backlog of the spool during the snapshot (bytes received, not yet read), or null. */
  maxUnreadBytes: number | null;
  /** Largest batch handed to onBatch: operations, and bytes of keys + raw values + chunk elements. */
  maxBatchOps: number;
  maxBatchBytes: number;
  fullSyncS: number;
  keys: number;
  keyOps: number;
  chunkOps: number;
  rdbBytes: number;
  maxSpoolBytes: number;
  batches: number;
  baselineRssKb: number;
  peakRssKb: number;
  sampledPeakHeapUsed: number;
  sampledPeakArrayBuffers: number;
  userCpuS: number;
  systemCpuS: number;
  stream?: {
    ops: number;
    /** Writes the master executed meanwhile (INFO commandstats calls of set/incr/lpush/hset…), for the count check. */
    masterWrites: number;
    firstToLastOpS: number;
    benchWallS: number;
    benchOutput: string;
    catchUpAfterBenchS: number;
    lagMaxBytes: number;
    lagMaxMs: number;
    /**
     * The true age of the oldest byte not yet handed on, max over the samples: now minus the
     * time `received` first passed the handed-on offset (progress.lagMs instead counts from
     * the last moment the session was exactly caught up, which under a steady load is rare).
     */
    lagAgeMaxMs: number;
    maxSpoolBytes: number;
    batches: number;
    streamUserCpuS: number;
    streamSystemCpuS: number;
  };
}

/** This process's own peak RSS in kB (VmHWM; getrusage's maxRSS includes the parent's at fork). */
function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m !== null) return Number(m[1]);
  } catch {
    // no procfs
  }
  return process.resourceUsage().maxRSS;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { maxBuffer: 16 << 20 });
  return stdout;
}

function infoField(info: string, name: string): string | undefined {
  return parseInfo(info)[name];
}

/** Sum of `calls` over commandstats of write commands (what the master replicates). */
async function masterWriteCalls(port: number): Promise<number> {
  const info = await cli(port, 'INFO', 'commandstats');
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(set|incr|lpush|rpush|hset|sadd|zadd|del|lpop|rpop|spop|mset|incrby|decr|expire):calls=(\d+)/gm)) n += Number(m[2]);
  return n;
}

/**
 * The spool's counters, reached through private fields (diagnostics only: when the source's
 * internals change shape this returns null and the figures that need it are reported as null).
 */
function spoolStats(source: object): { writtenBytes: number; unreadBytes: number } | null {
  try {
    const sessions = (source as { sessions?: Map<string, { session: { spool?: { stats?: { writtenBytes: number; unreadBytes: number } } } }> }).sessions;
    const st = sessions?.values().next().value?.session.spool?.stats;
    return st && typeof st.writtenBytes === 'number' ? { writtenBytes: st.writtenBytes, unreadBytes: st.unreadBytes } : null;
  } catch {
    return null;
  }
}

/** Bytes an operation holds on to: key, raw value, and the elements of a chunk. */
function opBytes(op: Operation): number {
  if (op.kind === 'command') {
    let n = 0;
    for (const a of op.args) n += a.length;
    return n;
  }
  if (op.kind !== 'key') return 0;
  let n = op.key.length + (op.raw?.length ?? 0);
  if (op.raw === null && op.value !== null) {
    switch (op.type) {
      case 'string':
        n += op.value.length;
        break;
      case 'list':
      case 'set':
        for (const b of op.value) n += b.length;
        break;
      case 'hash':
        for (const [f, v] of op.value) n += f.length + v.length;
        break;
      case 'zset':
        for (const [m] of op.value) n += m.length + 8;
        break;
      default:
        break;
    }
  }
  return n;
}

/** The 'link' scenario: how fast this process receives and spools the RDB, with nothing parsing it. */
async function linkOnly(args: SourceChildArgs): Promise<SourceChildReport> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ReplicaLink } = require(path.join(args.lib, 'replication', 'link')) as typeof import('../../lib/replication/link');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Spool, SpoolRecord } = require(path.join(args.lib, 'replication', 'spool')) as typeof import('../../lib/replication/spool');
  const baselineRssKb = peakRssKb();
  const spool = await Spool.open(path.join(args.dir, 'spool'), { mode: 'reset' });
  let bytes = 0;
  let tBegin = 0;
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no rdb-end within ${args.timeoutMs} ms`)), args.timeoutMs);
      const link = new ReplicaLink({
        host: '127.0.0.1',
        port: args.port,
        position: null,
        onRecord: (rec) => {
          switch (rec.kind) {
            case 'fullresync':
              tBegin = performance.now();
              spool.append(SpoolRecord.FULLRESYNC, Buffer.from(JSON.stringify({ replid: rec.replid, offset: rec.offset })));
              break;
            case 'rdb':
              bytes += rec.data.length;
              spool.append(SpoolRecord.RDB_DATA, rec.data);
              break;
            case 'rdb-end':
              clearTimeout(timer);
              void link.close();
              resolve();
              break;
            default:
              break;
          }
        },
      });
      link.once('close', (err: Error | null) => {
        if (err) reject(err);
      });
      link.start().catch(reject);
    });
  } finally {
    await spool.stop();
    await spool.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const ru = process.resourceUsage();
  return {
    scenario: 'link', decodeValues: false, snapshotBeginS: (tBegin - t0) / 1000, receivedAllS: seconds, maxUnreadBytes: null,
    maxBatchOps: 0, maxBatchBytes: 0, fullSyncS: seconds, keys: 0, keyOps: 0, chunkOps: 0, rdbBytes: bytes, maxSpoolBytes: bytes,
    batches: 0, baselineRssKb, peakRssKb: peakRssKb(), sampledPeakHeapUsed: 0, sampledPeakArrayBuffers: 0,
    userCpuS: ru.userCPUTime / 1e6, systemCpuS: ru.systemCPUTime / 1e6,
  };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as SourceChildArgs;
  if (args.scenario === 'link') {
    process.stdout.write(`${JSON.stringify(await linkOnly(args))}\n`);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ReplicaSource } = require(path.join(args.lib, 'replication', 'source')) as typeof import('../../lib/replication/source');

  const baselineRssKb = peakRssKb();
  let peakHeapUsed = 0;
  let peakArrayBuffers = 0;
  let maxSpool = 0;
  let lagMaxBytes = 0;
  let lagMaxMs = 0;
  let lagAgeMaxMs = 0;
  const received: Array<[number, number]> = []; // [time, progress.received] while streaming
  let streamMaxSpool = 0;
  let sampleLag = false;
  let lastWritten = -1;
  let tReceivedAll = 0;
  let maxUnread: number | null = null;
  let maxBatchOps = 0;
  let maxBatchBytes = 0;
  let inSnapshot = true;
  let gate: Promise<void> | null = null;
  let openGate: () => void = () => undefined;

  let keys = 0;
  let keyOps = 0;
  let chunkOps = 0;
  let batches = 0;
  let streamOps = 0;
  let streamBatches = 0;
  let tFirstOp = 0;
  let tLastOp = 0;
  let tBegin = 0;
  let tEnd = 0;
  let rdbBytes = 0;
  let snapshotDone: () => void = () => undefined;
  const snapshotEnded = new Promise<void>((r) => (snapshotDone = r));
  let failed: (err: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failed = reject));

  const source = new ReplicaSource({
    endpoint: { mode: 'standalone', host: '127.0.0.1', port: args.port },
    dir: args.dir,
    decodeValues: args.decodeValues,
    bigKeyBytes: args.bigKeyBytes,
    batchOps: args.batchOps,
    batchLatencyMs: args.batchLatencyMs,
    onBatch: async (ops: Operation[]) => {
      batches++;
      if (ops.length > maxBatchOps) maxBatchOps = ops.length;
      let bb = 0;
      for (const op of ops) bb += opBytes(op);
      if (bb > maxBatchBytes) maxBatchBytes = bb;
      for (const op of ops) {
        switch (op.kind) {
          case 'key':
            keyOps++;
            if (op.chunk !== null) chunkOps++;
            if (op.chunk === null || op.chunk.last) keys++;
            break;
          case 'command':
            if (streamOps === 0) tFirstOp = performance.now();
            streamOps++;
            break;
          case 'snapshot-begin':
            tBegin = performance.now();
            break;
          case 'snapshot-end':
            tEnd = performance.now();
            rdbBytes = source.progress.snapshot.bytes;
            snapshotDone();
            break;
        }
      }
      if (streamOps > 0) {
        if (gate !== null) {
          await gate;
          gate = null;
          tFirstOp = performance.now(); // the drain starts now; this batch counts as its first
        }
        tLastOp = performance.now();
        streamBatches++;
      }
    },
  });
  source.on('end', (err: Error | null) => {
    if (err) failed(err);
  });
  source.on('retry', (_shard: string, err: Error) => failed(new Error(`the source retried: ${err.message}`)));

  const sample = (): void => {
    const m = process.memoryUsage();
    if (m.heapUsed > peakHeapUsed) peakHeapUsed = m.heapUsed;
    if (m.arrayBuffers > peakArrayBuffers) peakArrayBuffers = m.arrayBuffers;
    const p = source.progress;
    if (p.spoolBytes > maxSpool) maxSpool = p.spoolBytes;
    const st = inSnapshot ? spoolStats(source) : null;
    if (st !== null) {
      if (st.writtenBytes > lastWritten) {
        lastWritten = st.writtenBytes;
        tReceivedAll = performance.now();
      }
      if (maxUnread === null || st.unreadBytes > maxUnread) maxUnread = st.unreadBytes;
    }
    if (sampleLag) {
      if (p.lagBytes > lagMaxBytes) lagMaxBytes = p.lagBytes;
      if (p.lagMs > lagMaxMs) lagMaxMs = p.lagMs;
      if (p.spoolBytes > streamMaxSpool) streamMaxSpool = p.spoolBytes;
      const sh = p.shards[0];
      if (sh && sh.received !== null && sh.offset !== null) {
        const now = performance.now();
        received.push([now, sh.received]);
        if (sh.offset < sh.received) {
          // first sample whose received offset had passed the handed-on offset
          let lo = 0;
          let hi = received.length - 1;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (received[mid][1] > sh.offset) hi = mid;
            else lo = mid + 1;
          }
          const age = Math.round(now - received[lo][0]);
          if (age > lagAgeMaxMs) lagAgeMaxMs = age;
        }
      }
    }
  };
  const sampler = setInterval(sample, args.scenario === 'stream' ? 50 : 20);
  const timeout = setTimeout(() => failed(new Error(`no result within ${args.timeoutMs} ms (phase ${source.phase})`)), args.timeoutMs);

  try {
    const t0 = performance.now();
    await Promise.race([source.start(), failure]);
    await Promise.race([snapshotEnded, failure]);
    inSnapshot = false;
    const cpuSnap = process.resourceUsage();
    sample();
    const report: SourceChildReport = {
      scenario: args.scenario,
      decodeValues: args.decodeValues,
      snapshotBeginS: (tBegin - t0) / 1000,
      receivedAllS: lastWritten < 0 ? null : (tReceivedAll - t0) / 1000,
      maxUnreadBytes: maxUnread,
      maxBatchOps,
      maxBatchBytes,
      fullSyncS: (tEnd - t0) / 1000,
      keys,
      keyOps,
      chunkOps,
      rdbBytes,
      maxSpoolBytes: maxSpool,
      batches,
      baselineRssKb,
      peakRssKb: 0,
      sampledPeakHeapUsed: peakHeapUsed,
      sampledPeakArrayBuffers: peakArrayBuffers,
      userCpuS: cpuSnap.userCPUTime / 1e6,
      systemCpuS: cpuSnap.systemCPUTime / 1e6,
    };

    if (args.scenario === 'stream' || args.scenario === 'drain') {
      const writesBefore = await masterWriteCalls(args.port);
      streamOps = 0;
      streamBatches = 0;
      if (args.scenario === 'drain') gate = new Promise<void>((r) => (openGate = r));
      sampleLag = true;
      const tb0 = performance.now();
      const bench = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(args.port), ...(args.benchArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
      let benchOut = '';
      bench.stdout.setEncoding('utf8').on('data', (d: string) => (benchOut += d));
      bench.stderr.setEncoding('utf8').on('data', (d: string) => (benchOut += d));
      const code = await Promise.race([new Promise<number | null>((r) => bench.once('exit', (c) => r(c))), failure]);
      const benchWallS = (performance.now() - tb0) / 1000;
      if (code !== 0) throw new Error(`redis-benchmark exited with ${code}: ${benchOut}`);
      if (args.scenario === 'drain') {
        // everything the master replicated must be in the spool before the drain starts
        const written = Number(infoField(await cli(args.port, 'INFO', 'replication'), 'master_repl_offset'));
        while ((source.progress.shards[0]?.received ?? 0) < written) await Promise.race([new Promise((r) => setTimeout(r, 5)), failure]);
        openGate();
      }
      // Caught up: everything the master replicated so far has been handed on.
      const tb1 = performance.now();
      const target = Number(infoField(await cli(args.port, 'INFO', 'replication'), 'master_repl_offset'));
      for (;;) {
        const off = source.progress.shards[0]?.offset ?? 0;
        if (off >= target) break;
        await Promise.race([new Promise((r) => setTimeout(r, 20)), failure]);
      }
      const catchUp = (performance.now() - tb1) / 1000;
      sample();
      const masterWrites = (await masterWriteCalls(args.port)) - writesBefore;
      const cpu = process.resourceUsage();
      report.stream = {
        ops: streamOps,
        masterWrites,
        firstToLastOpS: (tLastOp - tFirstOp) / 1000,
        benchWallS,
        benchOutput: benchOut.replace(/\r/g, '\n').split('\n').map((l) => l.trim()).filter((l) => /requests per second/.test(l)).join('; '),
        catchUpAfterBenchS: catchUp,
        lagMaxBytes,
        lagMaxMs,
        lagAgeMaxMs,
        maxSpoolBytes: streamMaxSpool,
        batches: streamBatches,
        streamUserCpuS: cpu.userCPUTime / 1e6 - report.userCpuS,
        streamSystemCpuS: cpu.systemCPUTime / 1e6 - report.systemCpuS,
      };
    }
    clearTimeout(timeout);
    clearInterval(sampler);
    await source.stop();
    report.peakRssKb = peakRssKb();
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    clearTimeout(timeout);
    clearInterval(sampler);
    await source.stop().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`source-child: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
