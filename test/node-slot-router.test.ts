import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as PartsModule from '../lib/cluster/parts';
import type * as FlowControlModule from '../lib/ops/flow-control';
import { keysOf } from '../lib/ops/commands';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { hashTagForSlot, partitionOf } from '../lib/cluster/slots';
import { startRedis, type RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, editorDefinition, getNode, loadFlow, messages, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode, type NodeModule, type NodeUnderTest, received, statusesOf, testFlow } from './support/node-red';
import { fillAllTypes } from './support/workload';

// The built node shares process-wide registries with the sinks (FlowControl, the part count):
// the test plays the sink with the built copies, loaded once the build is known to be there.
function built(): { FlowControl: typeof FlowControlModule.FlowControl; acknowledgePart: typeof PartsModule.acknowledgePart } {
  const dist = (file: string): string => path.resolve(__dirname, '..', 'dist', 'lib', file);
  /* eslint-disable @typescript-eslint/no-require-imports -- the built modules, see above */
  return {
    FlowControl: (require(dist('ops/flow-control.js')) as typeof FlowControlModule).FlowControl,
    acknowledgePart: (require(dist('cluster/parts.js')) as typeof PartsModule).acknowledgePart,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** What the router sends on: a part of a batch. */
interface Msg {
  payload: Operation[];
  redisSync: { source?: string; shard?: string; seq?: number; batch: string; partition: number; part: number; parts: number };
  error?: { message: string };
}

/** The node's own message text, as users see it. */
const t = (key: string, substitutions?: Record<string, unknown>): string => messages('redis-slot-router')(`redis-slot-router.${key}`, substitutions);

const nodes = (): NodeModule[] => [builtNode('redis-slot-router'), ...coreNodes('common/25-catch.js')];

function flow(partitions: number | string): FlowNode[] {
  const outs = Array.from({ length: Math.max(1, Number(partitions) || 1) }, (_, i) => `out${i}`);
  return testFlow([{ id: 'router', type: 'redis-slot-router', z: 'tab', partitions, outputs: outs.length, wires: outs.map((o) => [o]) }], outs);
}

/** What each output received, in order, and the router's status texts. */
const collect = (partitions: number): { outputs: Msg[][]; caught: Msg[]; statuses: string[] } => ({
  outputs: Array.from({ length: partitions }, (_, i) => received<Msg>(`out${i}`)),
  caught: received<Msg>('caught'),
  statuses: statusesOf('router'),
});

let offset = 1000;
function cmd(name: string, ...args: string[]): CommandOp {
  const bufs = args.map((a) => Buffer.from(a));
  return { kind: 'command', db: 0, name, args: bufs, keys: keysOf(name, bufs), shard: 'standalone', offset: (offset += 10), tx: 0 };
}

/** A key in `slot`. */
const key = (slot: number, name = 'k'): string => `${name}{${hashTagForSlot(slot)}}`;
const names = (ops: Operation[]): string[] => ops.map((o) => (o.kind === 'command' ? [o.name, ...o.args.map(String)].join(' ') : o.kind));

describe('redis-slot-router node in a Node-RED runtime', function () {
  this.timeout(30_000);
  before(startNodeRed);
  after(stopNodeRed);
  afterEach(unloadFlow);

  it('spreads each batch over the partitions by slot, in order, one message per output, with the parts to count', async () => {
    await loadFlow(nodes(), flow(3));
    const got = collect(3);
    // slots 100, 7000 and 15000 go to partitions 0, 1 and 2 of 3
    assert.deepEqual([100, 7000, 15000].map((s) => partitionOf(s, 3)), [0, 1, 2]);
    const a = key(100, 'a');
    const b = key(7000, 'b');
    const a2 = key(100, 'a2');
    const batch1 = [cmd('SET', a, '1'), cmd('MSET', a2, 'x', b, 'y'), cmd('INCR', b), cmd('DEL', a, b), cmd('SET', a2, '2')];
    const router = getNode<NodeUnderTest>('router');
    router.receive({ topic: 'redis-sync/ops', payload: batch1, redisSync: { source: 'no-sink', shard: 'standalone', seq: 1 } });
    router.receive({ payload: [cmd('SET', b, '3')], redisSync: { source: 'no-sink', shard: 'standalone', seq: 2 } });
    await waitFor(() => got.outputs.every((o) => o.length === 2), 5000, 'two messages on every output');
    assert.deepEqual(names(got.outputs[0][0].payload), [`SET ${a} 1`, `MSET ${a2} x`, `DEL ${a}`, `SET ${a2} 2`]);
    assert.deepEqual(names(got.outputs[1][0].payload), [`MSET ${b} y`, `INCR ${b}`, `DEL ${b}`]);
    assert.deepEqual(got.outputs[2][0].payload, []);
    assert.deepEqual(names(got.outputs[1][1].payload), [`SET ${b} 3`]);
    for (let i = 0; i < 3; i++) {
      const [first, second] = got.outputs[i];
      assert.deepEqual({ ...first.redisSync, batch: undefined }, { source: 'no-sink', shard: 'standalone', seq: 1, batch: undefined, partition: i, part: i, parts: 3 });
      assert.equal((first as unknown as { topic: string }).topic, 'redis-sync/ops');
      assert.equal(first.redisSync.batch, got.outputs[0][0].redisSync.batch, 'one batch name for all its parts');
      assert.notEqual(second.redisSync.batch, first.redisSync.batch);
    }
    await waitFor(() => got.statuses.includes(`green:${t('status.routed', { ops: 6, split: 2 })}`), 3000, 'the status');
  });

  it('sends a batch with a barrier whole on the first output, once every earlier batch is applied, and holds the next until it is', async () => {
    await loadFlow(nodes(), flow(2));
    const got = collect(2);
    const { FlowControl, acknowledgePart } = built();
    const flowControl = FlowControl.for('src');
    flowControl.attach('fake-sink');
    try {
      const router = getNode<NodeUnderTest>('router');
      const send = async (ops: Operation[]): Promise<number> => {
        const seq = await flowControl.acquire('standalone', null);
        router.receive({ payload: ops, redisSync: { source: 'src', shard: 'standalone', seq } });
        return seq;
      };
      const a = key(100, 'a');
      const z = key(16000, 'z');
      await send([cmd('SET', a, '1'), cmd('SET', z, '1')]);
      await send([cmd('SET', a, '2'), cmd('FLUSHALL'), cmd('SET', z, '2')]);
      await send([cmd('SET', z, '3')]);
      await waitFor(() => got.outputs.every((o) => o.length === 1), 3000, 'the first batch');
      await sleep(200);
      assert.deepEqual(got.outputs.map((o) => o.length), [1, 1], 'the barrier batch waits for the first batch to be applied');
      assert.ok(got.statuses.includes(`yellow:${t('status.barrier')}`));

      // a sink applies the first batch's parts one by one; the batch is acknowledged with its last part only
      acknowledgePart(got.outputs[1][0].redisSync);
      await sleep(100);
      assert.equal(flowControl.pending, 3);
      assert.deepEqual(got.outputs.map((o) => o.length), [1, 1]);
      acknowledgePart(got.outputs[0][0].redisSync);
      await waitFor(() => got.outputs.every((o) => o.length === 2), 3000, 'the barrier batch');
      assert.equal(flowControl.pending, 2);
      assert.deepEqual(names(got.outputs[0][1].payload), [`SET ${a} 2`, 'FLUSHALL', `SET ${z} 2`]);
      assert.deepEqual(got.outputs[1][1].payload, []);
      assert.equal(got.outputs[1][1].redisSync.parts, 2);
      await sleep(200);
      assert.deepEqual(got.outputs.map((o) => o.length), [2, 2], 'the next batch waits for the barrier batch to be applied');

      acknowledgePart(got.outputs[0][1].redisSync);
      acknowledgePart(got.outputs[1][1].redisSync);
      await waitFor(() => got.outputs.every((o) => o.length === 3), 3000, 'the batch after the barrier');
      assert.deepEqual(names(got.outputs[1][2].payload), [`SET ${z} 3`]);
      assert.deepEqual(got.outputs[0][2].payload, []);
      acknowledgePart(got.outputs[0][2].redisSync);
      acknowledgePart(got.outputs[1][2].redisSync);
      assert.equal(flowControl.pending, 0);
    } finally {
      flowControl.detach('fake-sink');
    }
  });

  it('treats cross-slot commands and snapshot markers as barriers, and waits for nothing when no sink is attached', async () => {
    await loadFlow(nodes(), flow(2));
    const got = collect(2);
    const router = getNode<NodeUnderTest>('router');
    const begin: Operation = { kind: 'snapshot-begin', shard: 'standalone', replid: 'r', offset: 0 };
    const batches: Operation[][] = [[begin], [cmd('RENAME', key(100), key(16000))], [cmd('SET', key(16000), 'v')]];
    batches.forEach((payload, seq) => router.receive({ payload, redisSync: { source: 'nobody', shard: 'standalone', seq } }));
    await waitFor(() => got.outputs.every((o) => o.length === 3), 3000, 'every batch');
    assert.deepEqual(got.outputs[0].map((m) => names(m.payload)), [['snapshot-begin'], [`RENAME ${key(100)} ${key(16000)}`], []]);
    // every sink learns of the full sync; the other barriers go to the first output alone
    assert.deepEqual(got.outputs[1].map((m) => names(m.payload)), [['snapshot-begin'], [], [`SET ${key(16000)} v`]]);
    assert.equal((got.outputs[0][1].payload[0] as CommandOp).slot, -2);
  });

  it('for a source without any sink, waits at a barrier once, for the grace in which a sink could attach', async () => {
    await loadFlow(nodes(), flow(2));
    const got = collect(2);
    const { FlowControl } = built();
    const flowControl = FlowControl.for('lonely');
    const router = getNode<NodeUnderTest>('router');
    const arrived: number[] = [];
    got.outputs[0].push = (...items: Msg[]): number => {
      arrived.push(Date.now());
      return Array.prototype.push.apply(got.outputs[0], items);
    };
    const start = Date.now();
    for (const ops of [[cmd('FLUSHALL')], [cmd('SET', key(1), '1')], [cmd('FLUSHALL')], [cmd('SET', key(1), '2')]]) {
      const seq = await flowControl.acquire('standalone', null);
      router.receive({ payload: ops, redisSync: { source: 'lonely', shard: 'standalone', seq } });
    }
    await waitFor(() => arrived.length === 4, 5000, 'every batch');
    const [first, second, , last] = arrived.map((t) => t - start);
    assert.ok(first < 1000, `the first barrier batch went on at once (${first} ms)`);
    assert.ok(second >= 1900, `the next batch waited for the grace after the barrier (${second} ms)`);
    assert.ok(last - second < 1000, `the second barrier did not wait again (${last - second} ms)`);
    assert.ok(got.statuses.includes(`yellow:${t('status.barrier')}`));
    FlowControl.drop('lonely');
  });

  it('with one partition sends everything on, in order, as one part', async () => {
    await loadFlow(nodes(), flow(1));
    const got = collect(1);
    const ops = [cmd('SET', key(5), '1'), cmd('FLUSHALL'), cmd('DEL', key(5), key(9000))];
    getNode<NodeUnderTest>('router').receive({ payload: ops, redisSync: { source: 'x', shard: 'standalone', seq: 4 } });
    await waitFor(() => got.outputs[0].length === 1, 3000, 'the batch');
    assert.deepEqual(names(got.outputs[0][0].payload), [`SET ${key(5)} 1`, 'FLUSHALL', `DEL ${key(5)}`, `DEL ${key(9000)}`]);
    assert.deepEqual({ ...got.outputs[0][0].redisSync, batch: undefined }, { source: 'x', shard: 'standalone', seq: 4, batch: undefined, partition: 0, part: 0, parts: 1 });
  });

  it('reports a message that is not a batch to Catch nodes and keeps going', async () => {
    await loadFlow(nodes(), flow(2));
    const got = collect(2);
    const router = getNode<NodeUnderTest>('router');
    router.receive({ payload: 'hello' });
    await waitFor(() => got.caught.length === 1, 3000, 'the error');
    assert.equal(got.caught[0].error?.message, `Error: ${t('errors.notBatch')}`);
    router.receive({ payload: [cmd('SET', key(1), '1')] });
    await waitFor(() => got.outputs[0].length === 1, 3000, 'the next batch');
  });

  it('refuses every message when its partition count is bad', async () => {
    await loadFlow(nodes(), flow(17));
    const got = collect(17);
    const text = t('errors.partitions', { max: 16 });
    getNode<NodeUnderTest>('router').receive({ payload: [] });
    await waitFor(() => got.caught.length === 1, 3000, 'the error');
    assert.equal(got.caught[0].error?.message, `Error: ${text}`);
  });

  it('validates the partition count in the editor and labels the node with it', () => {
    const def = editorDefinition('redis-slot-router');
    assert.equal(def.category, 'redis sync');
    const validate = def.defaults.partitions.validate as (this: Record<string, unknown>, v: unknown) => boolean | string;
    for (const ok of [1, '2', ' 16 ']) assert.equal(validate.call({}, ok), true, String(ok));
    for (const bad of [0, 17, '2.5', 'x', '']) assert.equal(validate.call({}, bad), t('errors.partitions', { max: 16 }), String(bad));
    const label = def.label as (this: Record<string, unknown>) => string;
    assert.equal(label.call({ partitions: 4 }), 'slot router (4)');
    assert.equal(label.call({ partitions: 1 }), 'slot router');
    assert.equal(label.call({ name: 'mine', partitions: 4 }), 'mine');
  });
});

describe('redis-slot-router between a replica source and a cluster sink', function () {
  this.timeout(120_000);
  let source: RedisServer;
  let destination: RedisServer;
  let dir: string;
  before(async () => {
    await startNodeRed();
    [source, destination] = await Promise.all([startRedis(), startRedis()]);
    dir = mkdtempSync(path.join(tmpdir(), 'node-slot-router-'));
  });
  after(async () => {
    await stopNodeRed();
    await Promise.all([source.stop(), destination.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(unloadFlow);

  it('gets the destination to the source through barriers (snapshot markers, PUBLISH, cross-slot commands) without stalling', async () => {
    const c = source.client();
    await fillAllTypes(c, 'snap:', 8);
    const endpoint = (id: string, server: RedisServer): FlowNode => ({ id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(server.port) });
    await loadFlow(
      [builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-slot-router'), builtNode('redis-cluster-sink')],
      [
        { id: 'tab', type: 'tab' },
        endpoint('srcEp', source),
        endpoint('dstEp', destination),
        { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchOps: 50, batchLatencyMs: 5, wires: [['router'], []] },
        { id: 'router', type: 'redis-slot-router', z: 'tab', partitions: 2, outputs: 2, wires: [['sink'], ['sink']] },
        { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', exactlyOnce: true, wires: [[]] },
      ],
    );
    for (let r = 0; r < 60; r++) {
      await c.mset(`a:${r}`, r, `b:${r}`, r, `c:${r % 7}`, r);
      await c.del(`a:${r - 1}`, `b:${r - 2}`);
      if (r % 5 === 0) await c.publish('news', `round ${r}`);
      if (r % 10 === 0) await c.rename(`c:${r % 7}`, `moved:${r}`);
      await c.incr(`n:${r % 3}`);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        assertSameKeyspace(await keyspaceOf(destination), await keyspaceOf(source), 100);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(200);
      }
    }
    c.disconnect();
  });
});
