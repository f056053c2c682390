/**
 * RDB parser benchmark: `npm run bench:rdb`. Prints figures; asserts no timing.
 *
 * 1. Parse rate on the reference data set (bench/support/populate.lua): 2,000,000 keys
 *    with VALSIZE 100 (the reference shape at twice the reference count, so the RDB is
 *    > 100 MB: 117.3 MB with Redis 7.0). A warm-up pass, then 3 timed passes each of: raw
 *    read in 256 KB chunks (the I/O ceiling), CRC64 alone over the file in memory, RdbParser
 *    fed by readSync in 256 KB chunks, and RdbParser fed from memory (no I/O at all).
 * 2. Peak RSS while parsing an RDB holding ONE hash of 10,000,000 fields x 100-byte
 *    incompressible values (1.11 GB RDB, type 4 HASH), in a child process
 *    (bench/support/parse-child.ts: parseRdbFile, default bigKeyBytes, events discarded);
 *    peak RSS is the child's VmHWM (see peakRssKb there for why not getrusage).
 * 3. A final line `RESULT {...}` with every figure as JSON.
 *
 * Cost: the first run generates both RDBs in throw-away redis-server processes and caches
 * them in .bench/ (gitignored): 1.23 GB of disk (117 MB + 1.11 GB; each dump.rdb is written
 * inside .bench/ and renamed into place, never copied), and about 70 s of generation on
 * 2 cores (reference: 18 s incl. a 3 s SAVE; big hash: 53 s incl. a 19 s SAVE, the server
 * using 1.7 GB of RAM meanwhile). First run ~100 s in all; later runs reuse the cached files
 * when their parameters (and the redis-server version) match and take ~30 s.
 * Every server is stopped before any measurement starts, and on failure or Ctrl-C.
 *
 * Knobs (environment): BENCH_RDB_KEYS (2000000), BENCH_RDB_VALSIZE (100),
 * BENCH_HASH_FIELDS (10000000), BENCH_HASH_VALSIZE (100), BENCH_RDB_CACHE (<repo>/.bench),
 * BENCH_HASH_BIGKEY (extra child runs with these bigKeyBytes, comma-separated, for comparison;
 * default 1048576, empty for none),
 * BENCH_RDB_LIB (measure a compiled lib/rdb, e.g. dist/lib/rdb after `npm run build`, instead of
 * the TypeScript sources through tsx, whose esbuild transform makes the parser ~10-15% slower).
 * MB here is 10^6 bytes; RSS figures are MiB (2^20 bytes), as the 256 MB target is meant.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RdbEvent } from '../lib/rdb/events';
import type { RdbParserOptions } from '../lib/rdb/parser';
import { ensureBigHashRdb, ensureReferenceRdb } from './support/datasets';
import { stopAllServers } from './support/redis';

const ROOT = path.resolve(__dirname, '..');
const CACHE = process.env.BENCH_RDB_CACHE ?? path.join(ROOT, '.bench');
function positiveInt(name: string, fallback: number): number {
  const text = process.env[name];
  const v = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name}=${text} is not a positive integer`);
  return v;
}
const KEYS = positiveInt('BENCH_RDB_KEYS', 2_000_000);
const VALSIZE = positiveInt('BENCH_RDB_VALSIZE', 100);
const HASH_FIELDS = positiveInt('BENCH_HASH_FIELDS', 10_000_000);
const HASH_VALSIZE = positiveInt('BENCH_HASH_VALSIZE', 100);
const EXTRA_BIGKEY = (process.env.BENCH_HASH_BIGKEY ?? '1048576').split(',').filter((s) => s !== '').map((s) => {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`BENCH_HASH_BIGKEY: "${s}" is not a positive integer`);
  return v;
});
/** A compiled copy of lib/rdb to measure instead of the sources run through tsx (e.g. dist/lib/rdb). */
const LIB = process.env.BENCH_RDB_LIB === undefined ? path.join(ROOT, 'lib', 'rdb') : path.resolve(ROOT, process.env.BENCH_RDB_LIB);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { RdbParser } = require(path.join(LIB, 'parser')) as typeof import('../lib/rdb/parser');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Crc64 } = require(path.join(LIB, 'crc64')) as typeof import('../lib/rdb/crc64');
const CHUNK = 256 * 1024;
const PASSES = 3;

const log = (msg: string): void => console.log(msg);
const mb = (bytes: number): number => bytes / 1e6;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

let childProc: ReturnType<typeof spawn> | undefined;
process.on('exit', () => childProc?.kill('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping servers`);
    process.exit(130); // runs the 'exit' listeners, which SIGKILL servers and the child
  });
}

// ---- part 1: parse rate ----

interface PassResult {
  seconds: number;
  bytes: number;
  keys: number;
  events: number;
}

/** Reads the file in fresh CHUNK-byte buffers (a parser keeps slices of what it is given). */
function readChunks(file: string, onChunk: (chunk: Buffer) => void): number {
  const fd = openSync(file, 'r');
  let total = 0;
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      onChunk(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

function countEvents(events: RdbEvent[], acc: { keys: number; events: number }): void {
  acc.events += events.length;
  for (const ev of events) if (ev.kind === 'key' && (ev.chunk === null || ev.chunk.last)) acc.keys++;
}

function timed(run: () => Omit<PassResult, 'seconds'>): PassResult {
  const t0 = performance.now();
  const r = run();
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

function passRead(file: string): PassResult {
  return timed(() => ({ bytes: readChunks(file, () => undefined), keys: 0, events: 0 }));
}

function passCrc(whole: Buffer): PassResult {
  return timed(() => {
    new Crc64().update(whole);
    return { bytes: whole.length, keys: 0, events: 0 };
  });
}

function passParseFile(file: string, opts?: RdbParserOptions): PassResult {
  return timed(() => {
    const parser = new RdbParser(opts);
    const acc = { keys: 0, events: 0 };
    const bytes = readChunks(file, (chunk) => countEvents(parser.push(chunk), acc));
    countEvents(parser.finish(), acc);
    return { bytes, ...acc };
  });
}

function passParseMemory(chunks: Buffer[], opts?: RdbParserOptions): PassResult {
  return timed(() => {
    const parser = new RdbParser(opts);
    const acc = { keys: 0, events: 0 };
    let bytes = 0;
    for (const c of chunks) {
      bytes += c.length;
      countEvents(parser.push(c), acc);
    }
    countEvents(parser.finish(), acc);
    return { bytes, ...acc };
  });
}

interface Series {
  label: string;
  passes: PassResult[];
  bestMbS: number;
  medianMbS: number;
  medianKeysS: number;
}

function series(label: string, run: () => PassResult, withKeys: boolean): Series {
  run(); // warm-up: JIT, page cache
  const passes: PassResult[] = [];
  for (let i = 0; i < PASSES; i++) {
    const r = run();
    passes.push(r);
    const keyPart = withKeys ? `  ${(r.keys / r.seconds / 1e6).toFixed(2)} M keys/s` : '';
    log(`  ${label.padEnd(26)} pass ${i + 1}: ${(mb(r.bytes) / r.seconds).toFixed(1).padStart(7)} MB/s  (${r.seconds.toFixed(3)} s)${keyPart}`);
  }
  const rates = passes.map((p) => mb(p.bytes) / p.seconds).sort((a, b) => a - b);
  const keyRates = passes.map((p) => p.keys / p.seconds).sort((a, b) => a - b);
  const mid = Math.floor(PASSES / 2);
  const s = { label, passes, bestMbS: rates[rates.length - 1], medianMbS: rates[mid], medianKeysS: keyRates[mid] };
  log(`  ${label.padEnd(26)} best ${s.bestMbS.toFixed(1)} MB/s, median ${s.medianMbS.toFixed(1)} MB/s${withKeys ? `, median ${(s.medianKeysS / 1e6).toFixed(2)} M keys/s` : ''}`);
  return s;
}

// ---- part 2: peak RSS of a big hash parse, in a child process ----

interface ChildReport {
  bigKeyBytes: number | 'default';
  bytes: number;
  seconds: number;
  events: number;
  keys: number;
  chunkEvents: number;
  fields: number;
  maxFieldsPerEvent: number;
  baselineRssKb: number;
  peakRssKb: number;
  ruMaxRssKb: number;
  sampledPeakRss: number;
  sampledPeakHeapUsed: number;
  sampledPeakArrayBuffers: number;
  userCpuS: number;
  systemCpuS: number;
}

function runChild(file: string, bigKeyBytes: number | 'default'): Promise<ChildReport> {
  const script = path.join(__dirname, 'support', 'parse-child.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, file, String(bigKeyBytes)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_RDB_LIB: LIB },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    childProc = child;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      childProc = undefined;
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') reject(new Error(`parse child failed (${signal ?? `exit ${code}`}): ${out}`));
      else resolve(JSON.parse(line) as ChildReport);
    });
  });
}

function printChild(r: ChildReport): void {
  const MiB = 1024 * 1024;
  log(`  bigKeyBytes ${r.bigKeyBytes}: peak RSS ${(r.peakRssKb / 1024).toFixed(1)} MiB (VmHWM; ` +
    `${(r.baselineRssKb / 1024).toFixed(1)} MiB of it before parsing: node + tsx + modules), ${r.seconds.toFixed(2)} s ` +
    `= ${(mb(r.bytes) / r.seconds).toFixed(1)} MB/s, cpu user ${r.userCpuS.toFixed(2)} s sys ${r.systemCpuS.toFixed(2)} s`);
  log(`    ${r.keys} key(s), ${r.chunkEvents} chunk events, ${r.fields} fields (max ${r.maxFieldsPerEvent} per event); ` +
    `sampled peaks: rss ${(r.sampledPeakRss / MiB).toFixed(1)} MiB, heapUsed ${(r.sampledPeakHeapUsed / MiB).toFixed(1)} MiB, ` +
    `arrayBuffers ${(r.sampledPeakArrayBuffers / MiB).toFixed(1)} MiB`);
}

async function main(): Promise<void> {
  log(`bench:rdb  node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; MB = 10^6 bytes; cache ${CACHE}`);
  log(`parser under test: ${LIB}${process.env.BENCH_RDB_LIB === undefined ? ' (TypeScript sources via tsx)' : ''}`);

  // Generate (or reuse) both files first: no redis-server runs during any measurement.
  const ref = await ensureReferenceRdb(CACHE, KEYS, VALSIZE, log);
  const hash = await ensureBigHashRdb(CACHE, HASH_FIELDS, HASH_VALSIZE, log);
  await stopAllServers();

  log('');
  log(`1. parse rate: ${ref.path} — reference data set, ${KEYS} keys, VALSIZE ${VALSIZE}, ` +
    `${mb(ref.bytes).toFixed(1)} MB${ref.reused ? ' (cached)' : ''}; ${CHUNK / 1024} KB chunks, 1 warm-up + ${PASSES} timed passes`);
  const whole = readFileSync(ref.path);
  const stored = whole.subarray(whole.length - 8);
  const crcOk = new Crc64().update(whole, 0, whole.length - 8).equals(stored);
  const memChunks: Buffer[] = [];
  for (let off = 0; off < whole.length; off += CHUNK) memChunks.push(whole.subarray(off, Math.min(whole.length, off + CHUNK)));

  const read = series('raw read (I/O ceiling)', () => passRead(ref.path), false);
  const crc = series('CRC64 alone (in memory)', () => passCrc(whole), false);
  const parse = series('RdbParser, file readSync', () => passParseFile(ref.path), true);
  const parseMem = series('RdbParser, from memory', () => passParseMemory(memChunks), true);
  // What a RESTORE-based copy needs: every key's raw bytes, values left encoded.
  const raw = series('RdbParser raw, file readSync', () => passParseFile(ref.path, { decodeValues: false }), true);
  const keysSeen = parse.passes[0].keys;
  if (keysSeen !== KEYS) throw new Error(`the parser reported ${keysSeen} keys, expected ${KEYS}`);
  log(`  ${keysSeen} keys, ${parse.passes[0].events} events per pass; file CRC64 matches: ${crcOk}`);
  log(`  parser median = ${(100 * parse.medianMbS / read.medianMbS).toFixed(1)}% of raw read, ` +
    `CRC64 alone would take ${(100 * parse.medianMbS / crc.medianMbS).toFixed(1)}% of the parse time; ` +
    `target >= 150 MB/s: ${parse.medianMbS >= 150 ? 'met' : 'NOT met'} (median, decoded); ` +
    `${raw.medianMbS >= 150 ? 'met' : 'NOT met'} (median, raw values for RESTORE)`);

  log('');
  log(`2. peak RSS: ${hash.path} — one hash of ${HASH_FIELDS} fields x ${HASH_VALSIZE} B, ` +
    `${mb(hash.bytes).toFixed(1)} MB${hash.reused ? ' (cached)' : ''}; child process, parseRdbFile`);
  const big = await runChild(hash.path, 'default');
  printChild(big);
  if (big.fields !== HASH_FIELDS || big.keys !== 1) {
    throw new Error(`the child saw ${big.keys} keys / ${big.fields} fields, expected 1 / ${HASH_FIELDS}`);
  }
  log(`  target peak RSS < 256 MiB: ${big.peakRssKb / 1024 < 256 ? 'met' : 'NOT met'} ` +
    `(getrusage maxRSS: ${(big.ruMaxRssKb / 1024).toFixed(1)} MiB; not used, as a child's figure includes the parent's RSS at fork)`);
  for (const b of EXTRA_BIGKEY) printChild(await runChild(hash.path, b));

  const result = {
    rdb_mb: round(mb(ref.bytes)),
    keys: keysSeen,
    valsize: VALSIZE,
    parse_mb_s: round(parse.medianMbS),
    parse_mb_s_best: round(parse.bestMbS),
    parse_raw_mb_s: round(raw.medianMbS),
    parse_keys_s: Math.round(parse.medianKeysS),
    parse_mem_mb_s: round(parseMem.medianMbS),
    read_mb_s: round(read.medianMbS),
    crc_mb_s: round(crc.medianMbS),
    hash_fields: big.fields,
    hash_rdb_mb: round(mb(hash.bytes)),
    hash_parse_peak_rss_mb: round(big.peakRssKb / 1024),
    hash_parse_baseline_rss_mb: round(big.baselineRssKb / 1024),
    hash_parse_s: round(big.seconds, 2),
    hash_chunk_events: big.chunkEvents,
  };
  log('');
  log(`RESULT ${JSON.stringify(result)}`);
}

main()
  .catch(async (err: unknown) => {
    console.error(`bench:rdb failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => stopAllServers());
