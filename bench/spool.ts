/**
 * Throughput of lib/replication/spool: appends of 64 KB records (what a socket delivers), then
 * reading them all back, then both at once. The data mostly stays in the page cache, so this
 * measures the spool's own cost, not the disk's.
 * Run: npx tsx bench/spool.ts [MiB, default 1024]
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { Spool, SpoolRecord } from '../lib/replication/spool';

const MiB = 1024 * 1024;
const total = Number(process.argv[2] ?? 1024) * MiB;
const chunk = randomBytes(64 * 1024);
const count = Math.floor(total / chunk.length);

function rate(bytes: number, t0: bigint): string {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return `${(bytes / MiB / seconds).toFixed(0)} MB/s (${(bytes / MiB).toFixed(0)} MiB in ${seconds.toFixed(2)} s)`;
}

async function drain(spool: Spool): Promise<number> {
  let bytes = 0;
  for await (const rec of spool) bytes += rec.data.length;
  return bytes;
}

async function main(): Promise<void> {
  const dir = path.join(os.tmpdir(), `spool-bench-${process.pid}`);
  const spool = await Spool.open(dir, { maxBytes: 2 * total + 64 * MiB });
  try {
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) spool.append(SpoolRecord.STREAM, chunk);
    console.log(`append 64 KB records: ${rate(count * chunk.length, t0)}`);

    t0 = process.hrtime.bigint();
    let read = 0;
    for (let i = 0; i < count; i++) read += (await spool.next())?.data.length ?? 0;
    console.log(`read back:            ${rate(read, t0)}`);

    // Both at once: the writer yields to the event loop every 1 MiB, as a socket would.
    t0 = process.hrtime.bigint();
    const reader = drain(spool);
    let peak = 0;
    for (let i = 0; i < count; i++) {
      spool.append(SpoolRecord.STREAM, chunk);
      if (i % 16 === 15) {
        peak = Math.max(peak, spool.stats.bytesOnDisk);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    spool.close();
    const both = await reader;
    console.log(`append + read at once: ${rate(both, t0)}, peak backlog on disk ${(peak / MiB).toFixed(0)} MiB`);
  } finally {
    await spool.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
