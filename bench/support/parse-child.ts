/**
 * Parses one RDB file with parseRdbFile (createReadStream, 256 KB reads), discarding the
 * events, and prints one JSON line with its own memory figures. bench/rdb.ts runs it in a
 * fresh process so that the peak RSS belongs to this parse alone.
 *
 *   node --import tsx bench/support/parse-child.ts <file.rdb> [bigKeyBytes]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

// bench/rdb.ts passes BENCH_RDB_LIB to measure a compiled copy of lib/rdb instead of the sources.
const LIB = process.env.BENCH_RDB_LIB ?? path.join(__dirname, '..', '..', 'lib', 'rdb');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parseRdbFile } = require(path.join(LIB, 'source')) as typeof import('../../lib/rdb/source');

/**
 * This process's peak RSS in KB. On Linux, VmHWM of /proc/self/status: the high-water mark of
 * this process's own address space. process.resourceUsage().maxRSS is NOT usable in a spawned
 * child: Linux keeps ru_maxrss across execve, and the forked copy of the parent counts, so a
 * child of a 500 MB parent starts with maxRSS 500 MB. Elsewhere, fall back to maxRSS.
 */
function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m !== null) return Number(m[1]);
  } catch {
    // no procfs
  }
  return process.resourceUsage().maxRSS;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const bigKeyArg = process.argv[3];
  if (file === undefined) throw new Error('usage: parse-child.ts <file.rdb> [bigKeyBytes]');
  const opts = bigKeyArg === undefined || bigKeyArg === 'default' ? {} : { bigKeyBytes: Number(bigKeyArg) };

  const baselineRssKb = peakRssKb();
  let peakHeapUsed = 0;
  let peakArrayBuffers = 0;
  let peakRss = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    if (m.heapUsed > peakHeapUsed) peakHeapUsed = m.heapUsed;
    if (m.arrayBuffers > peakArrayBuffers) peakArrayBuffers = m.arrayBuffers;
    if (m.rss > peakRss) peakRss = m.rss;
  };
  const sampler = setInterval(sample, 10);

  let events = 0;
  let keys = 0;
  let chunkEvents = 0;
  let fields = 0;
  let maxFieldsPerEvent = 0;
  let size = 0;
  const t0 = performance.now();
  for await (const ev of parseRdbFile(file, opts)) {
    events++;
    if (ev.kind === 'key') {
      if (ev.chunk !== null) chunkEvents++;
      if (ev.chunk === null || ev.chunk.last) keys++;
      if (ev.type === 'hash' && ev.value !== null) {
        fields += ev.value.length;
        if (ev.value.length > maxFieldsPerEvent) maxFieldsPerEvent = ev.value.length;
      }
    } else if (ev.kind === 'end') {
      size = ev.size;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  sample();
  const ru = process.resourceUsage();
  process.stdout.write(`${JSON.stringify({
    bigKeyBytes: opts.bigKeyBytes ?? 'default',
    bytes: size,
    seconds,
    events,
    keys,
    chunkEvents,
    fields,
    maxFieldsPerEvent,
    baselineRssKb,
    peakRssKb: peakRssKb(),
    /** getrusage's figure, for comparison: includes the parent's RSS at fork time (see peakRssKb). */
    ruMaxRssKb: ru.maxRSS,
    sampledPeakRss: peakRss,
    sampledPeakHeapUsed: peakHeapUsed,
    sampledPeakArrayBuffers: peakArrayBuffers,
    userCpuS: ru.userCPUTime / 1e6,
    systemCpuS: ru.systemCPUTime / 1e6,
  })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
