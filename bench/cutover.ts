/**
 * The write pause of a cutover: `npm run bench:cutover` (after `npm run build`). Node-RED in
 * this process (the test runtime), a standalone source → sink sync with a redis-cutover node
 * tapping the stream, and writers holding the source at a steady rate (BENCH_CUTOVER_RATE,
 * default 10 000 writes/s, pipelined in 10 ms ticks over 10 000 keys). Per round, after 3 s of
 * writes, one cutover (hold 0); printed per round: the pause from the node's report (pause →
 * switch now, split into waiting for the destination and comparing keys, and the comparison
 * before the pause), the keys checked,
 * the lag at the pause, and the longest a write waited as the writers saw it. The same
 * rounds run without writers first: the baseline the ratio is taken against.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startRedis, type RedisServer } from '../test/harness';
import { builtNode, coreNodes, getNode, loadFlow, received, startNodeRed, stopNodeRed, testFlow, unloadFlow, type NodeUnderTest } from '../test/support/node-red';
import { waitFor } from '../test/support/wait';

const RATE = Number(process.env.BENCH_CUTOVER_RATE ?? 10_000);
const ROUNDS = Number(process.env.BENCH_CUTOVER_ROUNDS ?? 5);
const TICK_MS = 10;

interface Report {
  switchNow: boolean;
  reason?: string;
  pauseMs: number;
  drainMs: number;
  checkMs: number;
  precheckMs: number;
  keysChecked: number;
  keysCheckedPaused: number;
  lagAtPause: { ms: number; bytes: number };
}

/** Writes at `rate` per second in pipelined ticks; records the longest a tick's writes waited. */
class Writers {
  written = 0;
  longestMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly clients: Redis[],
    private readonly rate: number,
  ) {}

  start(): void {
    const perTick = Math.round((this.rate * TICK_MS) / 1000 / this.clients.length);
    let n = 0;
    const started = Date.now();
    this.timer = setInterval(() => {
      // behind schedule (a pause held the writes): the ticks missed are not made up for
      if (this.written > ((Date.now() - started) / 1000) * this.rate + this.rate) return;
      for (const c of this.clients) {
        const p = c.pipeline();
        for (let i = 0; i < perTick; i++) p.set(`k${n++ % 10_000}`, String(n));
        const sentAt = Date.now();
        void p.exec().then(() => {
          this.written += perTick;
          this.longestMs = Math.max(this.longestMs, Date.now() - sentAt);
        });
      }
    }, TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

async function round(source: RedisServer, writing: boolean): Promise<Report & { writerLongestMs: number; rate: number }> {
  const clients = writing ? [source.client(), source.client()] : [];
  const writers = new Writers(clients, RATE);
  writers.start();
  await new Promise((r) => setTimeout(r, 3000));
  const rate = Math.round(writers.written / 3);
  const switched = received('switch');
  const aborted = received('aborted');
  writers.longestMs = 0;
  getNode<NodeUnderTest>('cut').receive({ payload: 'cutover' });
  await waitFor(() => switched.length + aborted.length > 0, 30_000, 'the cutover');
  await new Promise((r) => setTimeout(r, 300));
  writers.stop();
  for (const c of clients) c.disconnect();
  const report = (switched[0] ?? aborted[0]).payload as Report;
  if (!report.switchNow) throw new Error(`the cutover aborted: ${report.reason}`);
  return { ...report, writerLongestMs: writers.longestMs, rate };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  await startNodeRed();
  const source = await startRedis();
  const destination = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'bench-cutover-'));
  try {
    await loadFlow(
      [...['redis-endpoint', 'redis-replica-source', 'redis-cluster-sink', 'redis-cutover'].map((t) => builtNode(t)), ...coreNodes('common/25-catch.js')],
      testFlow(
        [
          { id: 'se', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(source.port) },
          { id: 'de', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destination.port) },
          { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'se', spoolDir: dir, wires: [['sink', 'cut'], []] },
          { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'de', conflict: 'ignore', wires: [[]] },
          { id: 'cut', type: 'redis-cutover', z: 'tab', source: 'src', destination: 'de', timeoutMs: 10_000, holdMs: 0, wires: [['switch'], ['aborted']] },
        ],
        ['switch', 'aborted'],
      ),
    );
    await source.command('SET', 'ready', '1');
    await waitFor(async () => (await destination.command('GET', 'ready')) === '1', 30_000, 'the sync streaming');
    const results: Record<string, Array<Awaited<ReturnType<typeof round>>>> = { idle: [], writing: [] };
    for (const mode of ['idle', 'writing'] as const) {
      for (let i = 1; i <= ROUNDS; i++) {
        const r = await round(source, mode === 'writing');
        results[mode].push(r);
        console.log(
          `${mode} round ${i}: ${r.rate} writes/s before; pause ${r.pauseMs} ms (drain ${r.drainMs} ms, check ${r.checkMs} ms of ${r.keysCheckedPaused} keys; before the pause ${r.precheckMs} ms of ${r.keysChecked}); lag at pause ${r.lagAtPause.ms} ms / ${r.lagAtPause.bytes} B; longest write wait ${r.writerLongestMs} ms`,
        );
      }
    }
    const idle = median(results.idle.map((r) => r.pauseMs));
    const writing = median(results.writing.map((r) => r.pauseMs));
    const result = {
      rate: median(results.writing.map((r) => r.rate)),
      pauseMsMedian: writing,
      pauseMsMax: Math.max(...results.writing.map((r) => r.pauseMs)),
      drainMsMedian: median(results.writing.map((r) => r.drainMs)),
      checkMsMedian: median(results.writing.map((r) => r.checkMs)),
      keysChecked: median(results.writing.map((r) => r.keysChecked)),
      keysCheckedPausedMedian: median(results.writing.map((r) => r.keysCheckedPaused)),
      writerLongestWaitMsMax: Math.max(...results.writing.map((r) => r.writerLongestMs)),
      idlePauseMsMedian: idle,
      ratioToIdle: idle > 0 ? Number((writing / idle).toFixed(2)) : null,
      targetMs: 1000,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await unloadFlow();
    await stopNodeRed();
    await source.stop();
    await destination.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
