import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { RedisServer } from './harness';
import { NodeRedProcess } from './support/node-red-process';
import { builtNode, coreNodes, getNode, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, testFlow, unloadFlow, waitFor, type FlowNode, type HelperMessage, type NodeUnderTest } from './support/node-red';
import { TestServers } from './support/servers';
import { requireBuilds } from './support/versions';

/** A client writing to the source without pause, each write timed: a paused source shows as a write that waits. */
class Writer {
  done = 0;
  /** The longest a write waited, and when that write was sent. */
  longest = { ms: 0, sentAt: 0 };
  private stopped = false;
  private loop: Promise<void>;

  constructor(private readonly c: Redis) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const sentAt = Date.now();
      const i = this.done;
      await this.c.multi().incr('counter').set(`k${i % 200}`, String(i)).exec();
      const ms = Date.now() - sentAt;
      if (ms > this.longest.ms) this.longest = { ms, sentAt };
      this.done++;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.c.disconnect();
  }
}

/** How long one write to `c` takes (a paused source holds it until the pause ends). */
async function writeTime(c: Redis, key = 'probe'): Promise<number> {
  const started = Date.now();
  await c.set(key, String(started));
  return Date.now() - started;
}

interface Report {
  switchNow: boolean;
  code?: string;
  reason?: string;
  pauseMs: number;
  keysChecked: number;
  writesPaused: boolean;
  lagAtPause: { ms: number; bytes: number };
  shards: Array<{ shard: string; offset: number }>;
  differences?: Array<{ key: Buffer; reason: string }>;
}

describe('redis-cutover node in a Node-RED runtime', function () {
  this.timeout(90_000);
  const servers = new TestServers();
  let dir: string;
  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-cutover-'));
  });
  afterEach(async () => {
    await unloadFlow();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const flow = (source: RedisServer, destination: RedisServer, cutover: Partial<FlowNode> = {}): FlowNode[] =>
    testFlow(
      [
        { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(source.port) },
        { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destination.port) },
        { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchLatencyMs: 5, wires: [['sink', 'cut'], ['progress']] },
        { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', wires: [[]] },
        { id: 'cut', type: 'redis-cutover', z: 'tab', source: 'src', destination: 'dstEp', timeoutMs: 3000, holdMs: 0, ...cutover, wires: [['switch'], ['aborted']] },
      ],
      ['switch', 'aborted', 'progress'],
    );

  /** Loads the flow and waits until the sync streams with everything applied. */
  async function start(source: RedisServer, destination: RedisServer, cutover: Partial<FlowNode> = {}): Promise<{ switched: HelperMessage[]; aborted: HelperMessage[]; caught: HelperMessage[]; statuses: string[] }> {
    await loadFlow([builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-cluster-sink'), builtNode('redis-cutover'), ...coreNodes('common/25-catch.js')], flow(source, destination, cutover));
    const progress = received('progress');
    const out = { switched: received('switch'), aborted: received('aborted'), caught: received('caught'), statuses: statusesOf('cut') };
    await waitFor(() => (progress.at(-1)?.payload as { caughtUp?: boolean } | undefined)?.caughtUp, 20_000, 'the sync streaming, caught up');
    return out;
  }

  const cutover = (extra: object = {}): void => getNode<NodeUnderTest>('cut').receive({ payload: 'cutover', ...extra });

  it('under a running writer: writes are paused, the destination holds everything the source wrote, the recent keys are checked, "switch now" carries the figures; writes resume on close', async () => {
    const source = await servers.server();
    const destination = await servers.server();
    await start(source, destination, { holdMs: 60_000 });
    const c = source.client();
    const d = destination.client();
    // the writer has a connection of its own: a held write holds every later command of its connection
    const writer = new Writer(source.client());
    await waitFor(() => writer.done > 300, 10_000, 'writes under way');
    const { switched, caught } = { switched: received('switch'), caught: received('caught') };
    const cutAt = Date.now();
    cutover();
    await waitFor(() => switched.length === 1 || caught.length > 0, 10_000, 'switch now');
    assert.deepEqual(caught, []);
    const report = switched[0].payload as Report;
    // held: nothing more reaches the source, and the destination holds exactly what it has
    const doneAtSwitch = writer.done;
    assert.equal(await d.get('counter'), await c.get('counter'), 'the destination applied every write before the switch');
    assert.equal(writer.done, doneAtSwitch + 0, 'a write got through while held');
    assert.equal(report.switchNow, true);
    assert.equal(report.writesPaused, true);
    assert.ok(report.keysChecked > 0 && report.keysChecked <= 201, `keys checked: ${report.keysChecked}`);
    assert.ok(report.pauseMs >= 0 && report.pauseMs < 3000, `pause ${report.pauseMs} ms`);
    assert.ok(report.lagAtPause.bytes >= 0 && report.lagAtPause.ms >= 0);
    assert.equal(report.shards.length, 1);
    assert.equal(report.shards[0].shard, 'standalone');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(writer.done, doneAtSwitch, 'a write got through while held');
    // the node closing lifts the pause, long before its 60 s hold
    await unloadFlow();
    await waitFor(() => writer.done > doneAtSwitch, 2000, 'writes resumed once the node closed');
    assert.ok(writer.longest.sentAt >= cutAt - 50, 'the longest write was the one held by the cutover');
    await writer.stop();
    c.disconnect();
    d.disconnect();
  });

  it('a destination that does not apply within the timeout: the pause is lifted at once, TIMEOUT with the bytes behind to output 2 and Catch, red status', async () => {
    const source = await servers.server();
    const destination = await servers.server();
    const { aborted, caught, statuses } = await start(source, destination, { timeoutMs: 1500 });
    const c = source.client();
    const d = destination.client();
    // the destination takes no writes for a while: the sink cannot apply what the source writes
    await d.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    try {
      for (let i = 0; i < 50; i++) await c.incr('n');
      const started = Date.now();
      cutover();
      await waitFor(() => aborted.length === 1, 10_000, 'the abort');
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2500, `aborted after ${elapsed} ms, the timeout is 1500 ms`);
      const report = aborted[0].payload as Report;
      assert.equal(report.code, 'TIMEOUT');
      assert.match(String(report.reason), /did not apply everything within 1500 ms.*bytes behind.*writes resumed/);
      assert.ok(report.lagAtPause.bytes > 0, `behind at the pause: ${report.lagAtPause.bytes} B`);
      assert.ok((await writeTime(c)) < 300, 'a write still waits: the pause was not lifted');
      await waitFor(() => caught.length === 1, 2000, 'the error to Catch');
      assert.match(String(caught[0].error?.message), /cutover aborted: .*did not apply everything/);
      assert.equal(statuses.at(-1), 'red:aborted: TIMEOUT');
    } finally {
      await d.call('CLIENT', 'UNPAUSE');
    }
    c.disconnect();
    d.disconnect();
  });

  it('a key that differs on the destination: the pause is lifted at once, DIFFER names the key', async () => {
    const source = await servers.server();
    const destination = await servers.server();
    const { aborted, caught, statuses } = await start(source, destination);
    const c = source.client();
    const d = destination.client();
    for (let i = 0; i < 20; i++) await c.set(`user:${i}`, `v${i}`);
    await waitFor(async () => (await d.get('user:19')) === 'v19', 5000, 'the writes applied');
    await d.set('user:7', 'planted');
    cutover();
    await waitFor(() => aborted.length === 1, 10_000, 'the abort');
    const report = aborted[0].payload as Report;
    assert.equal(report.code, 'DIFFER');
    assert.deepEqual(report.differences?.map((x) => [String(x.key), x.reason]), [['user:7', 'value']]);
    assert.match(String(report.reason), /1 of \d+ recently written keys differ.*"user:7".*writes resumed/);
    assert.ok((await writeTime(c)) < 300, 'a write still waits: the pause was not lifted');
    await waitFor(() => caught.length === 1, 2000, 'the error to Catch');
    assert.equal(statuses.at(-1), 'red:aborted: DIFFER');
    c.disconnect();
    d.disconnect();
  });

  it('a source before 6.2: nothing paused, OLD_SOURCE says what to stop; with msg.writesStopped it drains, checks and switches without a pause', async function () {
    requireBuilds(this, ['5.0.14']);
    const source = await servers.version('5.0.14');
    const destination = await servers.server();
    const { switched, aborted, caught } = await start(source, destination);
    const c = source.client();
    await c.set('last', 'write');
    cutover();
    await waitFor(() => aborted.length === 1, 10_000, 'the refusal');
    const report = aborted[0].payload as Report;
    assert.equal(report.code, 'OLD_SOURCE');
    assert.match(String(report.reason), /Redis 5\.0\.14.*no CLIENT PAUSE … WRITE \(Redis 6\.2\+\)\. Stop every application and job that writes to the source yourself.*msg\.writesStopped = true/);
    assert.ok((await writeTime(c)) < 300, 'the old source was paused');
    await waitFor(() => caught.length === 1, 2000, 'the error to Catch');
    cutover({ writesStopped: true });
    await waitFor(() => switched.length === 1 || aborted.length === 2, 15_000, 'switch now');
    const ok = switched[0].payload as Report;
    assert.equal(ok.writesPaused, false);
    assert.ok(ok.keysChecked >= 2, `keys checked: ${ok.keysChecked}`);
    c.disconnect();
  });

  it('a Node-RED killed during a cutover leaves a pause that the source lifts by itself at its timeout', async () => {
    const source = await servers.server();
    const destination = await servers.server();
    const c = source.client();
    const d = destination.client();
    const flowOf: FlowNode[] = [
      { id: 'tab', type: 'tab' },
      { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(source.port) },
      { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destination.port) },
      { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: join(dir, 'spool'), batchLatencyMs: 5, wires: [['sink', 'cut'], []] },
      { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', wires: [[]] },
      { id: 'cut', type: 'redis-cutover', z: 'tab', source: 'src', destination: 'dstEp', timeoutMs: 4000, holdMs: 0, wires: [[], []] },
      { id: 'go', type: 'inject', z: 'tab', props: [{ p: 'payload' }], payload: 'cutover', payloadType: 'str', wires: [['cut']] },
    ];
    const red = new NodeRedProcess(join(dir, 'node-red'), flowOf);
    try {
      await red.start();
      await c.set('ready', '1');
      await waitFor(async () => (await d.get('ready')) === '1', 20_000, 'the sync streaming');
      // the destination takes no writes: the cutover waits, writes paused, until Node-RED is killed
      await d.call('CLIENT', 'PAUSE', '30000', 'WRITE');
      const res = await fetch(`${red.url}inject/go`, { method: 'POST' });
      assert.equal(res.status, 200);
      // a write that waits shows the pause (each probe on a connection of its own: a held one holds its connection)
      const held = await waitFor(async () => {
        const p = source.client();
        const sentAt = Date.now();
        const done = p.set('probe', '1').then(() => Date.now());
        const quick = await Promise.race([done, new Promise<null>((r) => setTimeout(() => r(null), 300))]);
        if (quick !== null) {
          p.disconnect();
          return null;
        }
        return { sentAt, done: done.finally(() => p.disconnect()) };
      }, 10_000, 'the source pausing writes');
      const crashedAt = Date.now();
      await red.crash();
      const releasedAt = await held.done;
      assert.ok(releasedAt > crashedAt, 'the pause ended before Node-RED was killed');
      assert.ok(releasedAt - held.sentAt <= 4500, `the write was held ${releasedAt - held.sentAt} ms; the pause's timeout is 4000 ms from the cutover`);
    } finally {
      await d.call('CLIENT', 'UNPAUSE');
      await red.crash();
      c.disconnect();
      d.disconnect();
    }
  });
});
