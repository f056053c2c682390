/**
 * The scan source's figures: `npm run bench:scan`. The engine alone (lib/scan ScanSource into
 * lib/sink DestinationWriter, in this process, exactly once), no Node-RED. Prints progress
 * lines and one `RESULT {...}` line. Never asserts.
 *
 * 1. Full copy of the reference data set (bench/support/populate.lua, BENCH_SCAN_KEYS keys,
 *    default 1,000,000, VALSIZE 100) standalone -> empty standalone in mode "full": from start
 *    to the source's 'end' with every batch applied, vs a native `REPLICAOF` of the same source
 *    into a fresh server in the same run (until `master_link_status:up` with every key), passes
 *    interleaved; ratio = median ours / median native (target <= 2). DBSIZE checked after each.
 * 2. Live lag: a full+incremental source on an empty server, then a paced writer
 *    (bench/support/e2e-load.ts) offers BENCH_SCAN_LAG_RATE (20,000) SET/s for BENCH_SCAN_LAG_S
 *    (10) s; a probe per batch, seen at the destination by keyspace notifications (its RESTORE):
 *    lag = arrival - send, p50/p99/max (target p99 < 200 ms).
 */
import { mkdtempSync, rmSync, copyFileSync, linkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import type { EndpointConfig } from '../lib/endpoint';
import { ScanSource } from '../lib/scan/source';
import { DestinationWriter } from '../lib/sink/writer';
import { ensureReferenceRdb } from './support/datasets';
import { PacedLoad } from './support/e2e-load';
import { startServer, stopAllServers, type BenchServer } from './support/redis';

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');
const KEYS = Number(process.env.BENCH_SCAN_KEYS ?? 1_000_000);
const PASSES = Number(process.env.BENCH_SCAN_PASSES ?? 2);
const LAG_RATE = Number(process.env.BENCH_SCAN_LAG_RATE ?? 20_000);
const LAG_S = Number(process.env.BENCH_SCAN_LAG_S ?? 10);
const PHASES = (process.env.BENCH_SCAN_PHASES ?? 'full,lag').split(',');

const log = (msg: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const endpoint = (port: number): EndpointConfig => ({ mode: 'standalone', host: '127.0.0.1', port }) as EndpointConfig;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

function client(port: number): Redis {
  return new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
}

/** A scan source into a writer; resolves once the source ended ('full') or at once ('full+incremental'). */
async function scanInto(src: number, dst: number, dir: string, mode: 'full' | 'full+incremental'): Promise<{ source: ScanSource; writer: DestinationWriter; ended: Promise<Error | null> }> {
  const writer = new DestinationWriter({ endpoint: endpoint(dst), conflict: 'ignore', exactlyOnce: true });
  await writer.connect();
  const inFlight = new Set<Promise<void>>();
  const source = new ScanSource({
    endpoint: endpoint(src),
    mode,
    dir,
    setKeyspaceEvents: true,
    onBatch: async (ops) => {
      // as in a flow: the source reads on while up to 4 batches (the flow control's window) are
      // being applied; the writer keeps them in order and overlaps their writes
      while (inFlight.size >= 4) await Promise.race(inFlight);
      const applying: Promise<void> = writer.apply(ops, { source: 'bench-scan' }).finally(() => inFlight.delete(applying));
      inFlight.add(applying);
    },
  });
  const ended = new Promise<Error | null>((resolve) => source.once('end', (err: Error | null) => void Promise.all(inFlight).then(() => resolve(err), resolve)));
  source.on('retry', (shard: string, err: Error) => log(`  retry ${shard}: ${err.message}`));
  await source.start();
  return { source, writer, ended };
}

async function fullPass(src: BenchServer, scratch: string): Promise<{ seconds: number; keys: number }> {
  const dst = await startServer(scratch);
  const dir = mkdtempSync(path.join(scratch, 'state-'));
  const t0 = performance.now();
  const { source, writer, ended } = await scanInto(src.port, dst.port, dir, 'full');
  const err = await ended;
  const seconds = (performance.now() - t0) / 1000;
  if (err) throw err;
  await source.stop();
  writer.close();
  const c = client(dst.port);
  const keys = (await c.dbsize()) - (await c.exists('redis-sync:ckpt', 'redis-sync:ckpt:global'));
  c.disconnect();
  await dst.stop();
  return { seconds, keys };
}

async function nativePass(src: BenchServer, scratch: string): Promise<number> {
  const rep = await startServer(scratch);
  const c = client(rep.port);
  const t0 = performance.now();
  await c.call('REPLICAOF', '127.0.0.1', String(src.port));
  for (;;) {
    const info = String(await c.call('INFO', 'replication', 'keyspace'));
    const keys = Number(/^db0:keys=(\d+)/m.exec(info)?.[1] ?? 0);
    if (/master_link_status:up/.test(info) && keys >= KEYS) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  c.disconnect();
  await rep.stop();
  return seconds;
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'bench-scan-'));
  const result: Record<string, unknown> = { keys: KEYS, cpus: os.cpus().length, loadavg_start: os.loadavg()[0] };
  try {
    if (PHASES.includes('full')) {
      const rdb = await ensureReferenceRdb(CACHE, KEYS, 100, log);
      const src = await startServer(scratch, ['--enable-debug-command', 'yes', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']);
      const dump = path.join(src.dir, 'dump.rdb');
      try {
        linkSync(rdb.path, dump);
      } catch {
        copyFileSync(rdb.path, dump);
      }
      await src.cli('DEBUG', 'RELOAD', 'NOSAVE');
      const ours: number[] = [];
      const native: number[] = [];
      for (let i = 1; i <= PASSES; i++) {
        const n = await nativePass(src, scratch);
        native.push(n);
        log(`pass ${i}: native REPLICAOF ${n.toFixed(2)} s`);
        await sleep(1000);
        const s = await fullPass(src, scratch);
        ours.push(s.seconds);
        log(`pass ${i}: scan source ${s.seconds.toFixed(2)} s, ${s.keys} keys at the destination (${s.keys === KEYS ? 'all' : 'MISSING SOME'}); load average ${os.loadavg()[0].toFixed(1)}`);
      }
      result.scan_full_s = ours.map((x) => Number(x.toFixed(2)));
      result.native_replicaof_s = native.map((x) => Number(x.toFixed(2)));
      result.ratio = Number((median(ours) / median(native)).toFixed(2));
      log(`full copy: scan ${median(ours).toFixed(2)} s vs REPLICAOF ${median(native).toFixed(2)} s = ${result.ratio}x (target <= 2)`);
      await src.stop();
    }
    if (PHASES.includes('lag')) {
      const src = await startServer(scratch);
      const dst = await startServer(scratch);
      const dir = mkdtempSync(path.join(scratch, 'state-'));
      const { source, writer } = await scanInto(src.port, dst.port, dir, 'full+incremental');
      while (source.phase !== 'streaming') await sleep(20);
      const load = new PacedLoad({ srcPort: src.port, dstPort: dst.port, batch: LAG_RATE / 100, intervalMs: 10, arrival: { events: ['restore'], flags: 'Kg' } });
      await load.connect();
      load.start();
      await sleep(LAG_S * 1000);
      await load.stop();
      await load.waitProbes(10_000);
      const stats = load.stats();
      result.lag_rate_per_s = load.ratePerS;
      result.lag = stats;
      log(`live lag at ${load.ratePerS} SET/s for ${LAG_S} s: p50 ${stats.p50} ms, p99 ${stats.p99} ms, max ${stats.max} ms, ${stats.missing} of ${stats.probes} probes missing (target p99 < 200 ms)`);
      await load.close();
      await source.stop();
      writer.close();
    }
  } finally {
    result.loadavg_end = os.loadavg()[0];
    console.log(`RESULT ${JSON.stringify(result)}`);
    await stopAllServers();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
