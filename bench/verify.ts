/**
 * bench:verify — lib/verify on the 1M-key reference data set (bench/support/populate.lua,
 * cached in .bench/ as bench:e2e caches it), between two local servers:
 *
 * 1. a native `REPLICAOF` of the source into a fresh server, timed (the baseline; that
 *    replica, detached, is the destination of what follows);
 * 2. a verification with no rate limit, timed, its report checked equal, and the process's
 *    peak RSS (target: within 2x of REPLICAOF, at most 200 MB);
 * 3. the source's command latency (PING from a paced probe, 1000/s) for BENCH_VERIFY_LATENCY_S
 *    seconds without a verification, then during one at the default rate: p50/p99/max.
 *
 * Figures are printed, never asserted. Knobs: BENCH_VERIFY_KEYS (1000000), BENCH_VERIFY_LATENCY_S (10).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { DEFAULT_RATE, verify, VerifySide, type VerifyReport } from '../lib/verify';
import { ensureReferenceRdb } from './support/datasets';
import { percentile } from './support/e2e-load';
import { startServer, stopAllServers, type BenchServer } from './support/redis';

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');
const KEYS = Number(process.env.BENCH_VERIFY_KEYS ?? 1_000_000);
const LATENCY_S = Number(process.env.BENCH_VERIFY_LATENCY_S ?? 10);
const VALSIZE = 100;

const log = (m: string): void => console.log(m);
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

function client(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  return c;
}

async function keysOf(c: Redis): Promise<number> {
  return Number(/^db0:keys=(\d+)/m.exec(String(await c.call('INFO', 'keyspace')))?.[1] ?? 0);
}

/** A fresh replica of `src` until it holds every key, timed; then detached (REPLICAOF NO ONE). */
async function nativeReplicaof(src: BenchServer, scratch: string): Promise<{ server: BenchServer; seconds: number }> {
  const server = await startServer(scratch);
  const c = client(server.port);
  try {
    const t0 = performance.now();
    await c.call('REPLICAOF', '127.0.0.1', String(src.port));
    for (;;) {
      const info = String(await c.call('INFO', 'replication'));
      if (/master_link_status:up/.test(info) && (await keysOf(c)) >= KEYS) break;
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    await c.call('REPLICAOF', 'NO', 'ONE');
    return { server, seconds };
  } finally {
    c.disconnect();
  }
}

async function open(port: number, name: 'source' | 'destination'): Promise<VerifySide> {
  return VerifySide.open(name, { mode: 'standalone', host: '127.0.0.1', port });
}

/**
 * PINGs the server 1000 times a second for `seconds` from a process of its own (so this
 * process's own work does not count as the server's latency): each latency, sorted, in ms.
 */
function probe(port: number, seconds: number): Promise<number[]> {
  const code = `
    const Redis = require('ioredis');
    const c = new Redis({ host: '127.0.0.1', port: ${port} });
    (async () => {
      const out = [];
      const t0 = performance.now();
      for (let i = 0; performance.now() - t0 < ${seconds * 1000}; i++) {
        const wait = t0 + i - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const s = performance.now();
        await c.ping();
        out.push(performance.now() - s);
      }
      c.disconnect();
      process.stdout.write(JSON.stringify(out));
    })();`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', code], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(err);
      else resolve((JSON.parse(stdout) as number[]).sort((a, b) => a - b));
    });
  });
}

function latency(sorted: number[]): string {
  const f = (p: number): string => (percentile(sorted, p) ?? NaN).toFixed(2);
  return `p50 ${f(50)} ms, p99 ${f(99)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(2)} ms (${sorted.length} probes)`;
}

async function main(): Promise<void> {
  log(`bench:verify  node ${process.version}, ${os.cpus().length} cpus, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const ref = await ensureReferenceRdb(CACHE, KEYS, VALSIZE, log);
  mkdirSync(CACHE, { recursive: true });
  const scratch = mkdtempSync(path.join(CACHE, 'verify-'));
  try {
    const src = await startServer(scratch, ['--enable-debug-command', 'yes', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']);
    const dump = path.join(src.dir, 'dump.rdb');
    try {
      linkSync(ref.path, dump);
    } catch {
      copyFileSync(ref.path, dump);
    }
    await src.cli('DEBUG', 'RELOAD', 'NOSAVE');
    log(`source :${src.port}: ${await src.cli('DBSIZE')} keys`);

    const native = await nativeReplicaof(src, scratch);
    log(`1. native REPLICAOF of ${KEYS} keys: ${native.seconds.toFixed(2)} s`);

    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
    const source = await open(src.port, 'source');
    const destination = await open(native.server.port, 'destination');
    const t0 = performance.now();
    let report: VerifyReport;
    try {
      report = await verify(source, destination, { rate: 0, rounds: 1 });
    } finally {
      source.close();
      destination.close();
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    const ratio = seconds / native.seconds;
    log(`2. verify of ${report.compared} keys, no rate limit: ${seconds.toFixed(2)} s (${Math.round(report.compared / seconds)} keys/s), ` +
      `equal ${report.equal}; ratio to REPLICAOF ${ratio.toFixed(2)} (target <= 2: ${ratio <= 2 ? 'met' : 'NOT met'})`);
    log(`   peak RSS ${mib(peak)} MiB (before ${mib(rssBefore)} MiB; maxRSS of the process ${mib(process.resourceUsage().maxRSS * 1024)} MiB; target <= 200: ${peak <= 200 * 1024 * 1024 ? 'met' : 'NOT met'})`);
    if (!report.equal) log(`   NOT EQUAL: ${JSON.stringify(report.samples.slice(0, 5))}`);

    const idle = await probe(src.port, LATENCY_S);
    log(`3. source latency without a verification: ${latency(idle)}`);
    const stop = new AbortController();
    const s2 = await open(src.port, 'source');
    const d2 = await open(native.server.port, 'destination');
    const running = verify(s2, d2, { rounds: 1, signal: stop.signal });
    const busy = await probe(src.port, LATENCY_S);
    stop.abort();
    const partial = await running;
    s2.close();
    d2.close();
    log(`   during a verification at the default rate (${DEFAULT_RATE} keys/s; ${partial.compared} keys in ${LATENCY_S} s): ${latency(busy)}`);
    const p99 = (percentile(busy, 99) ?? NaN) / (percentile(idle, 99) ?? NaN);
    log(`RESULT ${JSON.stringify({
      keys: KEYS,
      native_replicaof_s: +native.seconds.toFixed(3),
      verify_s: +seconds.toFixed(3),
      ratio: +ratio.toFixed(2),
      equal: report.equal,
      peak_rss_mib: +mib(peak),
      latency_idle_p99_ms: +(percentile(idle, 99) ?? NaN).toFixed(3),
      latency_verify_p99_ms: +(percentile(busy, 99) ?? NaN).toFixed(3),
      latency_p99_ratio: +p99.toFixed(2),
    })}`);
  } finally {
    await stopAllServers();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
