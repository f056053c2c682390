/**
 * RDB file source benchmark: `npm run bench:rdb-source`. Prints figures; asserts no timing
 * (it fails only when a run is wrong: the destination's key count differs from the file's).
 *
 * The reference data set (bench/support/populate.lua, 1,000,000 keys, VALSIZE 100, cached in
 * .bench/ by bench/support/datasets.ts) as an RDB file, loaded into an empty redis-server:
 * - ours: RdbFileSource (lib/backup/rdb-file.ts, the redis-rdb-source node's engine, node
 *   defaults: batchOps 1000, bigKeyBytes 1 MiB, decodeValues off) reading the file from its
 *   path, each batch handed to a DestinationWriter (the cluster sink's engine, exactly once,
 *   conflict "ignore") with up to 4 batches in flight, as the flow control's window allows;
 *   from the start to the last batch applied. In this process, without Node-RED.
 * - baseline: `redis-cli --pipe` of ready RESTORE commands (one per key, REPLACE, ABSTTL where
 *   the key expires), made from the same file before the clock starts: the fastest a client
 *   can write these keys with RESTORE.
 * Passes alternate (ours, baseline, …), each into a flushed server; the medians and their
 * ratio are printed (target ≤ 1.5×), and the peak RSS of this process during our loads
 * (sampled every 20 ms) against the file's size: the file is read a piece at a time, so RSS
 * must not grow with it. A final line `RESULT {...}` has every figure.
 *
 * Knobs (environment): BENCH_RDB_SOURCE_KEYS (1000000), BENCH_RDB_SOURCE_VALSIZE (100),
 * BENCH_RDB_SOURCE_PASSES (3), BENCH_RDB_CACHE (<repo>/.bench).
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { RdbFileSource } from '../lib/backup/rdb-file';
import { RdbParser } from '../lib/rdb/parser';
import { buildDumpPayload } from '../lib/rdb/dump';
import { encodeCommand } from '../lib/resp/encoder';
import { DestinationWriter } from '../lib/sink/writer';
import { ensureReferenceRdb } from './support/datasets';
import { startServer, stopAllServers, type BenchServer } from './support/redis';

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');

function intEnv(name: string, fallback: number): number {
  const text = process.env[name];
  const v = text === undefined || text === '' ? fallback : Number(text);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name}=${text} is not an integer >= 1`);
  return v;
}
const KEYS = intEnv('BENCH_RDB_SOURCE_KEYS', 1_000_000);
const VALSIZE = intEnv('BENCH_RDB_SOURCE_VALSIZE', 100);
const PASSES = intEnv('BENCH_RDB_SOURCE_PASSES', 3);
const WINDOW = 4;
const MiB = 1024 * 1024;

const log = (msg: string): void => console.log(msg);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The file as RESTORE commands, streamed to `out` (never whole in memory). */
async function writeRestores(rdbPath: string, out: string): Promise<void> {
  const parser = new RdbParser({ decodeValues: false });
  const file = createWriteStream(out);
  const put = async (buf: Buffer): Promise<void> => {
    if (!file.write(buf)) await new Promise<void>((r) => file.once('drain', () => r()));
  };
  let db = 0;
  const take = async (events: ReturnType<RdbParser['push']>): Promise<void> => {
    for (const ev of events) {
      if (ev.kind !== 'key') continue;
      if (ev.raw === null) throw new Error('a chunked key: the reference set has none');
      if (ev.db !== db) {
        await put(encodeCommand(['SELECT', String(ev.db)]));
        db = ev.db;
      }
      const args: Array<string | Buffer> = ['RESTORE', ev.key, String(ev.expireMs ?? 0), buildDumpPayload(ev.rdbType, ev.raw, parser.version), 'REPLACE'];
      if (ev.expireMs !== null) args.push('ABSTTL');
      await put(encodeCommand(args));
    }
  };
  for await (const chunk of createReadStream(rdbPath, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) await take(parser.push(chunk));
  await take(parser.finish());
  file.end();
  await finished(file);
}

async function baseline(server: BenchServer, restores: string): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(server.port), '--pipe'], { stdio: [openSync(restores, 'r'), 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --pipe exited with ${code}`))));
  });
  return (performance.now() - t0) / 1000;
}

async function ours(server: BenchServer, rdbPath: string): Promise<{ seconds: number; peakRssMiB: number; startRssMiB: number }> {
  const writer = new DestinationWriter({ endpoint: { mode: 'standalone', host: '127.0.0.1', port: server.port }, conflict: 'ignore', exactlyOnce: true });
  await writer.connect();
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  const source = new RdbFileSource({
    input: { path: rdbPath },
    decodeValues: false,
    onBatch: async (ops) => {
      while (inFlight.size >= WINDOW) await Promise.race(inFlight);
      if (failure !== null) throw failure;
      const p = writer.apply(ops, { source: 'bench' }).catch((err: unknown) => void (failure = err));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  });
  await source.run();
  await Promise.all(inFlight);
  if (failure !== null) throw failure;
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  writer.close();
  return { seconds, peakRssMiB: peakRss / MiB, startRssMiB: startRss / MiB };
}

async function main(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const rdb = await ensureReferenceRdb(CACHE, KEYS, VALSIZE, log);
  log(`RDB ${rdb.path}: ${(rdb.bytes / 1e6).toFixed(1)} MB, ${KEYS} keys`);
  const work = mkdtempSync(path.join(CACHE, 'rdb-source-'));
  const server = await startServer(work);
  const restores = path.join(work, 'restores.resp');
  const results = { ours: [] as number[], baseline: [] as number[], peakRssMiB: 0, startRssMiB: 0 };
  try {
    const check = async (what: string): Promise<void> => {
      const n = Number(await server.cli('DBSIZE'));
      // the writer's checkpoints live in the destination too (redis-sync:ckpt…)
      const ckpt = (await server.cli('--scan', '--pattern', 'redis-sync:*')).split('\n').filter((l) => l !== '').length;
      if (n - ckpt !== KEYS) throw new Error(`${what}: the destination holds ${n - ckpt} keys, the file ${KEYS}`);
    };
    for (let pass = 1; pass <= PASSES; pass++) {
      await server.cli('FLUSHALL');
      const o = await ours(server, rdb.path);
      await check('ours');
      results.ours.push(o.seconds);
      if (pass === 1) {
        results.peakRssMiB = o.peakRssMiB;
        results.startRssMiB = o.startRssMiB;
        // made after our first load, so its memory does not count in that load's RSS
        await writeRestores(rdb.path, restores);
      }
      await server.cli('FLUSHALL');
      const b = await baseline(server, restores);
      await check('baseline');
      results.baseline.push(b);
      log(`pass ${pass}: ours ${o.seconds.toFixed(2)} s, redis-cli --pipe of RESTOREs ${b.toFixed(2)} s, ratio ${(o.seconds / b).toFixed(2)}`);
    }
    const ratio = median(results.ours) / median(results.baseline);
    log(`RDB file -> destination, ${KEYS} keys: ours ${median(results.ours).toFixed(2)} s (median of ${PASSES}), redis-cli --pipe ${median(results.baseline).toFixed(2)} s, ratio ${ratio.toFixed(2)} (target <= 1.5)`);
    log(`RSS during our first load: ${results.startRssMiB.toFixed(0)} MiB at the start, peak ${results.peakRssMiB.toFixed(0)} MiB, for a ${(rdb.bytes / MiB).toFixed(0)} MiB file`);
    console.log(`RESULT ${JSON.stringify({ keys: KEYS, rdbBytes: rdb.bytes, ours: results.ours, baseline: results.baseline, ratio, startRssMiB: results.startRssMiB, peakRssMiB: results.peakRssMiB })}`);
  } finally {
    await server.stop();
    await stopAllServers();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
