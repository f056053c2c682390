/**
 * Memory over repeated deploys: `npm run bench:deploys`. Node-RED in this process (the test
 * runtime, node-red-node-test-helper), a standalone source with 50k strings and a 200k-element
 * list, and per cycle a fresh destination: deploy source -> sink, wait for the full sync,
 * stream 20k INCRs, undeploy. After each cycle three forced GCs (node --expose-gc), then the
 * heap in use: flat over the cycles means nothing of a finished flow stays behind. Prints one
 * line per cycle and a RESULT line with the growth from the second cycle to the last.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '../test/harness';
import { builtNode, loadFlow, startNodeRed, stopNodeRed, unloadFlow } from '../test/support/node-red';
import { waitFor } from '../test/support/wait';

const CYCLES = Number(process.env.BENCH_DEPLOYS_CYCLES ?? 12);
const MiB = 2 ** 20;

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:deploys does)');
  await startNodeRed();
  const src = await startRedis();
  const c = src.client();
  for (let i = 0; i < 50_000; i += 1000) {
    const p = c.pipeline();
    for (let j = 0; j < 1000; j++) p.set(`k${i + j}`, 'x'.repeat(100));
    await p.exec();
  }
  for (let i = 0; i < 20; i++) await c.rpush('biglist', ...Array.from({ length: 10_000 }, () => 'xxx'));
  const heaps: number[] = [];
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const dst = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'bench-deploys-'));
    await loadFlow(['redis-endpoint', 'redis-replica-source', 'redis-cluster-sink'].map((t) => builtNode(t)), [
      { id: 'tab', type: 'tab' },
      { id: 'se', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
      { id: 'de', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(dst.port) },
      // a new source id each cycle: a clean full sync, as a new flow would do
      { id: `source${cycle}`, type: 'redis-replica-source', z: 'tab', endpoint: 'se', spoolDir: dir, wires: [['sink'], []] },
      { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'de', wires: [[]] },
    ]);
    await waitFor(async () => Number(await dst.command('DBSIZE')) >= 50_001, 60_000, 'the full sync');
    for (let i = 0; i < 20_000; i++) await c.incr(`n${i % 100}`);
    await waitFor(async () => Number(await dst.command('GET', 'n0')) === Number(await src.command('GET', 'n0')), 30_000, 'the stream');
    await unloadFlow();
    await dst.stop();
    rmSync(dir, { recursive: true, force: true });
    for (let i = 0; i < 3; i++) gc();
    const m = process.memoryUsage();
    heaps.push(m.heapUsed / MiB);
    console.log(`cycle ${cycle}: heap used after GC ${(m.heapUsed / MiB).toFixed(1)} MiB, RSS ${(m.rss / MiB).toFixed(1)} MiB, external ${(m.external / MiB).toFixed(1)} MiB`);
  }
  c.disconnect();
  await src.stop();
  await stopNodeRed();
  const growth = heaps[heaps.length - 1] - heaps[Math.min(1, heaps.length - 1)];
  console.log(`RESULT ${JSON.stringify({ cycles: CYCLES, heap_after_gc_mib: heaps.map((h) => Number(h.toFixed(1))), growth_mib_from_cycle_2: Number(growth.toFixed(2)) })}`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
