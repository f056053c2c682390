import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { keysOf } from '../lib/ops/commands';
import type { RedisSyncInfo } from '../lib/ops/message';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { hashTagForSlot, partitionOf } from '../lib/cluster/slots';
import { startRedis, type RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, editorDefinition, getNode, loadFlow, messages, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode, type NodeModule, type NodeUnderTest, received, statusesOf, testFlow } from './support/node-red';
import { fillAllTypes } from './support/workload';

/** What the router sends on: a part of a batch. */
interface Msg {
  payload: Operation[];
  redisSync: RedisSyncInfo & Required<Pick<RedisSyncInfo, 'batch' | 'partition' | 'part' | 'parts'>>;
  error?: { message: string };
}

/**
 * A function node that holds the first message it gets, and every one after it, for `ms`, then
 * sends them on in order and lets later ones through: a sink that gets its first batch late.
 */
function slowStart(id: string, ms: number, wires: string[][]): FlowNode {
  const func = `if (context.get('open')) return msg;
const held = context.get('held') || [];
held.push(msg);
context.set('held', held);
if (held.length === 1) setTimeout(() => { context.set('open', true); for (const m of context.get('held')) node.send(m); }, ${ms});
return null;`;
  return { id, type: 'function', z: 'tab', func, outputs: 1, noerr: 0, wires };
}

const endpoint = (id: string, server: RedisServer): FlowNode => ({ id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(server.port) });

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

  it('never holds a barrier when only debug nodes are behind it: nothing would acknowledge it', async () => {
    const c = source.client();
    await c.flushall();
    await loadFlow(
      [builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-slot-router'), ...coreNodes('common/25-catch.js')],
      testFlow(
          [
            endpoint('srcEp', source),
            { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: path.join(dir, 'debug'), batchOps: 1, batchLatencyMs: 0, wires: [['router'], ['progress']] },
            { id: 'router', type: 'redis-slot-router', z: 'tab', partitions: 2, outputs: 2, wires: [['out0'], ['out1']] },
          ],
        ['out0', 'out1', 'progress'],
      ),
    );
    const statuses = statusesOf('router');
    const out0 = received<Msg>('out0');
    const progress = received<{ payload: { phase: string } }>('progress');
    await waitFor(() => progress.some((m) => m.payload.phase === 'streaming'), 10_000, 'the stream');
    await c.set(key(15000, 'z'), '1');
    await c.flushall();
    await c.publish('news', 'x');
    await c.set(key(100, 'done'), '1');
    await waitFor(() => out0.some((m) => names(m.payload).includes(`SET ${key(100, 'done')} 1`)), 10_000, 'the last write');
    // the snapshot markers, FLUSHALL and PUBLISH were barriers
    assert.ok(out0.some((m) => names(m.payload).includes('FLUSHALL')));
    assert.deepEqual(statuses.filter((s) => s.startsWith('yellow')), []);
    c.disconnect();
  });

  it('applies a barrier after what came before it on every partition, also when the sinks get their first batches seconds late', async () => {
    const c = source.client();
    const d = destination.client();
    await Promise.all([c.flushall(), d.flushall()]);
    // z goes to the second output, `done` to the first
    const z = key(15000, 'z');
    const done = key(100, 'done');
    assert.deepEqual([15000, 100].map((s) => partitionOf(s, 2)), [1, 0]);
    await loadFlow(
      [builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-slot-router'), builtNode('redis-cluster-sink'), ...coreNodes('function/10-function.js')],
      [
        { id: 'tab', type: 'tab' },
        endpoint('srcEp', source),
        endpoint('dstEp', destination),
        // one operation per batch: SET z and the FLUSHALL after it go to different outputs
        { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: path.join(dir, 'late'), batchOps: 1, batchLatencyMs: 0, wires: [['router'], ['progress']] },
        { id: 'progress', type: 'helper', z: 'tab' },
        { id: 'router', type: 'redis-slot-router', z: 'tab', partitions: 2, outputs: 2, wires: [['slowA'], ['slowB']] },
        // no sink sees a batch for the first 5 s; the second output's sink applies its first ones 3 s after the first's
        slowStart('slowA', 5000, [['sink']]),
        slowStart('slowB', 8000, [['sink']]),
        // exactly once off: on, the sink would skip a SET applied after the FLUSHALL as a replay (its
        // checkpoint is past it), which would hide the order it was applied in
        { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', exactlyOnce: false, wires: [['applied']] },
        { id: 'applied', type: 'helper', z: 'tab' },
      ],
    );
    const applied = received<Msg>('applied');
    const progress = received<{ payload: { phase: string } }>('progress');
    // written after the full sync, as the stream
    await waitFor(() => progress.some((m) => m.payload.phase === 'streaming'), 10_000, 'the stream');
    await c.set(z, '1');
    await sleep(100);
    await c.flushall();
    await sleep(100);
    await c.set(done, '1');
    await waitFor(async () => (await d.exists(done)) === 1, 30_000, 'the last write on the destination');
    // and every batch applied on the first output applied on the second too (z's among them)
    const partsOf = (p: number): string[] => applied.filter((m) => m.redisSync.partition === p).map((m) => m.redisSync.batch);
    await waitFor(() => partsOf(0).every((b) => partsOf(1).includes(b)), 30_000, 'every batch on both partitions');
    assertSameKeyspace(await keyspaceOf(destination), await keyspaceOf(source), 100);
    c.disconnect();
    d.disconnect();
  });
});
