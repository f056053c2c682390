/**
 * Micro-benchmark of lib/rdb/crc64: MB/s over a large buffer in one call, and over the
 * same data in 16 KB chunks (what a streaming parser feeds it).
 * Run: npx tsx bench/crc64.ts
 */
import { randomBytes } from 'node:crypto';
import { Crc64 } from '../lib/rdb/crc64';

const SIZE = 64 * 1024 * 1024;
const data = randomBytes(SIZE);

// Many short calls first, so that V8 optimizes update() as a whole function; otherwise the
// first 64 MB call runs on on-stack-replacement code and reads about 30% slower.
for (let i = 0; i < 2000; i++) new Crc64().update(data, 0, 65536);

function measure(label: string, run: () => void): void {
  for (let i = 0; i < 3; i++) run(); // let the JIT settle
  const rounds = 5;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const mbps = (SIZE * rounds) / (1024 * 1024) / seconds;
  console.log(`${label}: ${mbps.toFixed(0)} MB/s`);
}

measure('crc64 one call  ', () => {
  new Crc64().update(data);
});
measure('crc64 16 KB feed', () => {
  const c = new Crc64();
  for (let off = 0; off < SIZE; off += 16384) c.update(data, off, Math.min(SIZE, off + 16384));
});
