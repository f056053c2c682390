/**
 * Quick parse-rate loop on the cached reference RDB (run `npm run bench:rdb` once to create it):
 *
 *   tsx bench/rdb-quick.ts [passes] [libDir ...]
 *
 * For each lib dir (default lib/rdb; e.g. a copy of the sources at another commit) and each
 * pass: RdbParser decoded and raw (decodeValues false), fed by readSync in fresh 256 KB chunks
 * as in bench/rdb.ts. Lib dirs alternate pass by pass so that shared-CPU noise hits them alike
 * (but they share one process, whose JIT feedback they can spoil for each other: to compare
 * two versions, prefer alternating separate processes). MB per CPU-second (user + system time
 * of the whole process, GC threads included) is less disturbed by other load than MB/s.
 * Env: BENCH_RDB_FILE (default .bench/reference-2000000-v100.rdb), BENCH_QUICK_MODES
 * (decoded,raw).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import type { RdbEvent } from '../lib/rdb/events';

const ROOT = path.resolve(__dirname, '..');
const FILE = process.env.BENCH_RDB_FILE ?? path.join(ROOT, '.bench', 'reference-2000000-v100.rdb');
const PASSES = Number(process.argv[2] ?? 3);
const LIBS = process.argv.slice(3).length > 0 ? process.argv.slice(3).map((d) => path.resolve(d)) : [path.join(ROOT, 'lib', 'rdb')];
const MODES = (process.env.BENCH_QUICK_MODES ?? 'decoded,raw').split(',');
const CHUNK = 256 * 1024;

type ParserCtor = typeof import('../lib/rdb/parser').RdbParser;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsers = LIBS.map((d) => (require(path.join(d, 'parser')) as typeof import('../lib/rdb/parser')).RdbParser as ParserCtor);

function pass(P: ParserCtor, decode: boolean): { mbs: number; cpuMbs: number; keys: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const parser = new P({ decodeValues: decode });
  let keys = 0;
  const count = (evs: RdbEvent[]): void => {
    for (const ev of evs) if (ev.kind === 'key' && (ev.chunk === null || ev.chunk.last)) keys++;
  };
  const fd = openSync(FILE, 'r');
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    const n = readSync(fd, buf, 0, CHUNK, null);
    if (n === 0) break;
    total += n;
    count(parser.push(n === CHUNK ? buf : buf.subarray(0, n)));
  }
  closeSync(fd);
  count(parser.finish());
  const c = process.cpuUsage(c0);
  return { mbs: total / 1e6 / ((performance.now() - t0) / 1000), cpuMbs: total / ((c.user + c.system) / 1e6) / 1e6, keys };
}

const results: Record<string, number[]> = {};
const cpuResults: Record<string, number[]> = {};
for (let i = 0; i <= PASSES; i++) {
  for (const mode of MODES) {
    for (let j = 0; j < parsers.length; j++) {
      const r = pass(parsers[j], mode === 'decoded');
      const label = `${path.relative(ROOT, LIBS[j]) || '.'} ${mode}`;
      if (i === 0) continue; // warm-up
      (results[label] ??= []).push(r.mbs);
      (cpuResults[label] ??= []).push(r.cpuMbs);
      console.log(`${label.padEnd(30)} pass ${i}: ${r.mbs.toFixed(1)} MB/s, ${r.cpuMbs.toFixed(1)} MB per CPU-second (${r.keys} keys)`);
    }
  }
}
for (const [label, xs] of Object.entries(results)) {
  const s = [...xs].sort((a, b) => a - b);
  const c = [...cpuResults[label]].sort((a, b) => a - b);
  console.log(`${label.padEnd(30)} median ${s[Math.floor(s.length / 2)].toFixed(1)} best ${s[s.length - 1].toFixed(1)} MB/s; ` +
    `per CPU-second median ${c[Math.floor(c.length / 2)].toFixed(1)} best ${c[c.length - 1].toFixed(1)}`);
}
