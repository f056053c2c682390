import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { acknowledgePart, PartitionBarrier, type Part } from '../lib/cluster/partition-barrier';
import { SlotRouter } from '../lib/cluster/router';
import { hashTagForSlot, partitionOf } from '../lib/cluster/slots';
import { keysOf } from '../lib/ops/commands';
import { FlowControl } from '../lib/ops/flow-control';
import type { RedisSyncInfo } from '../lib/ops/message';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { waitFor } from './support/wait';

let offset = 1000;
function cmd(name: string, ...args: string[]): CommandOp {
  const bufs = args.map((a) => Buffer.from(a));
  return { kind: 'command', db: 0, name, args: bufs, keys: keysOf(name, bufs), shard: 'standalone', offset: (offset += 10), tx: 0 };
}

/** A key in `slot`. */
const key = (slot: number, name = 'k'): string => `${name}{${hashTagForSlot(slot)}}`;
const names = (ops: Operation[]): string[] => ops.map((o) => (o.kind === 'command' ? [o.name, ...o.args.map(String)].join(' ') : o.kind));

let sources = 0;

/**
 * A barrier of `partitions` outputs in front of sinks the test plays: a source that acquires
 * each batch in its flow control as the replica source does, what each output got, and when
 * the barrier waited.
 */
function setup(partitions: number, sinkBehind = true): {
  barrier: PartitionBarrier;
  flow: FlowControl;
  source: string;
  outputs: Part[][];
  waits: boolean[];
  send: (ops: Operation[]) => Promise<{ seq: number; done: Promise<void> }>;
} {
  const source = `partition-barrier-test-${++sources}`;
  const flow = FlowControl.for(source);
  const waits: boolean[] = [];
  const barrier = new PartitionBarrier({ id: 'router', partitions, sinkBehind: () => sinkBehind, onWait: (w) => waits.push(w) });
  const outputs: Part[][] = Array.from({ length: partitions }, () => []);
  const router = new SlotRouter();
  const send = async (ops: Operation[]): Promise<{ seq: number; done: Promise<void> }> => {
    const seq = await flow.acquire('standalone', null);
    const info: RedisSyncInfo = { source, shard: 'standalone', seq };
    const done = barrier.submit(router.route(ops), info, (parts) => parts.forEach((p, i) => outputs[i].push(p)));
    return { seq, done };
  };
  return { barrier, flow, source, outputs, waits, send };
}

const lengths = (outputs: Part[][]): number[] => outputs.map((o) => o.length);

describe('PartitionBarrier: the order across the slot router outputs', function () {
  this.timeout(10_000);
  afterEach(() => {
    for (let i = 1; i <= sources; i++) FlowControl.drop(`partition-barrier-test-${i}`);
  });

  it('spreads a batch without barriers over the outputs by slot at once, one part per output, naming the batch for its parts', async () => {
    const { outputs, send, waits, source } = setup(3, true);
    assert.deepEqual([100, 7000, 15000].map((s) => partitionOf(s, 3)), [0, 1, 2]);
    const a = key(100, 'a');
    const b = key(7000, 'b');
    await (await send([cmd('SET', a, '1'), cmd('MSET', key(100, 'a2'), 'x', b, 'y'), cmd('INCR', b)])).done;
    await (await send([cmd('SET', b, '2')])).done;
    assert.deepEqual(names(outputs[0][0].payload), [`SET ${a} 1`, `MSET ${key(100, 'a2')} x`]);
    assert.deepEqual(names(outputs[1][0].payload), [`MSET ${b} y`, `INCR ${b}`]);
    assert.deepEqual(outputs[2][0].payload, []);
    for (let i = 0; i < 3; i++) assert.deepEqual(outputs[i][0].redisSync, { source, shard: 'standalone', seq: 1, batch: 'router:1', partition: i, part: i, parts: 3 });
    assert.equal(outputs[0][1].redisSync.batch, 'router:2');
    assert.deepEqual(waits, [], 'nothing waited: no barrier');
  });

  it('sends a barrier batch whole on the first output once every earlier batch is applied, and holds the next until it is', async () => {
    const { flow, outputs, send, waits } = setup(2, false);
    // a sink took a batch of the source already: it acknowledges, whatever the wires say
    flow.attach('sink');
    const a = key(100, 'a');
    const z = key(16000, 'z');
    await send([cmd('SET', a, '1'), cmd('SET', z, '1')]);
    const barrierBatch = await send([cmd('SET', a, '2'), cmd('FLUSHALL'), cmd('SET', z, '2')]);
    await send([cmd('SET', z, '3')]);
    await sleep(100);
    assert.deepEqual(lengths(outputs), [1, 1], 'the barrier batch waits for the first batch to be applied');
    assert.deepEqual(waits, [true]);

    // the first batch's parts are applied one by one; the batch is acknowledged with its last part only
    acknowledgePart(outputs[1][0].redisSync);
    await sleep(50);
    assert.equal(flow.pending, 3);
    assert.deepEqual(lengths(outputs), [1, 1]);
    acknowledgePart(outputs[0][0].redisSync);
    await waitFor(() => outputs[0].length === 2, 3000, 'the barrier batch');
    assert.equal(flow.pending, 2);
    assert.deepEqual(names(outputs[0][1].payload), [`SET ${a} 2`, 'FLUSHALL', `SET ${z} 2`]);
    assert.deepEqual(outputs[1][1].payload, []);
    assert.equal(outputs[1][1].redisSync.parts, 2);
    await sleep(100);
    assert.deepEqual(lengths(outputs), [2, 2], 'the next batch waits for the barrier batch to be applied');

    acknowledgePart(outputs[0][1].redisSync);
    acknowledgePart(outputs[1][1].redisSync);
    await barrierBatch.done;
    await waitFor(() => outputs[1].length === 3, 3000, 'the batch after the barrier');
    assert.deepEqual(names(outputs[1][2].payload), [`SET ${z} 3`]);
    assert.deepEqual(waits, [true, false, true, false]);
  });

  it('with a sink wired behind that took nothing yet, waits for its acknowledgement however late it comes', async () => {
    const { flow, outputs, send } = setup(2, true);
    await send([cmd('SET', key(16000), '1')]);
    await send([cmd('FLUSHALL')]);
    // longer than the 2 s the router used to give a sink to take its first batch
    await sleep(2500);
    assert.deepEqual(lengths(outputs), [1, 1], 'the barrier batch waits');
    flow.attach('sink');
    acknowledgePart(outputs[0][0].redisSync);
    await sleep(50);
    assert.deepEqual(lengths(outputs), [1, 1], 'until every part is applied');
    acknowledgePart(outputs[1][0].redisSync);
    await waitFor(() => outputs[0].length === 2, 3000, 'the barrier batch');
    assert.deepEqual(names(outputs[0][1].payload), ['FLUSHALL']);
  });

  it('waits for nothing when no sink is wired behind and none took a batch (debug nodes only)', async () => {
    const { outputs, send, waits } = setup(2, false);
    const batches = [[cmd('FLUSHALL')], [cmd('SET', key(1), '1')], [cmd('RENAME', key(100), key(16000))], [cmd('SET', key(16000), '2')]];
    const sent = [];
    for (const ops of batches) sent.push(await send(ops));
    await Promise.all(sent.map((s) => s.done));
    assert.deepEqual(lengths(outputs), [4, 4]);
    assert.deepEqual(waits, []);
  });

  it('does not wait for a sink wired behind that failed before it took a batch (it never acknowledges)', async () => {
    const { flow, outputs, send, waits } = setup(2, true);
    await send([cmd('SET', key(16000), '1')]);
    await send([cmd('FLUSHALL')]);
    await sleep(50);
    assert.deepEqual(waits, [true]);
    flow.fail('sink', 'ERR refused');
    await waitFor(() => outputs[0].length === 2, 3000, 'the barrier batch');
    assert.deepEqual(waits, [true, false]);
  });

  it('gives every output the snapshot-begin of a barrier batch, and the others nothing else', async () => {
    const { outputs, send } = setup(3, false);
    const begin: Operation = { kind: 'snapshot-begin', shard: 'standalone', replid: 'r', offset: 0 };
    await (await send([begin, cmd('SET', key(16000), '1')])).done;
    await (await send([cmd('PUBLISH', 'news', 'x')])).done;
    assert.deepEqual(outputs.map((o) => o.map((p) => names(p.payload))), [
      [['snapshot-begin', `SET ${key(16000)} 1`], ['PUBLISH news x']],
      [['snapshot-begin'], []],
      [['snapshot-begin'], []],
    ]);
  });

  it('with one partition sends everything on at once, as one part, barriers and all', async () => {
    const { flow, outputs, send, waits } = setup(1, true);
    flow.attach('sink');
    await send([cmd('SET', key(5), '1')]);
    await (await send([cmd('FLUSHALL'), cmd('DEL', key(5), key(9000))])).done;
    assert.deepEqual(names(outputs[0][1].payload), ['FLUSHALL', `DEL ${key(5)}`, `DEL ${key(9000)}`]);
    assert.equal(outputs[0][1].redisSync.parts, 1);
    assert.deepEqual(waits, []);
  });

  it('ends its waits on close and sends nothing more', async () => {
    const { barrier, outputs, send } = setup(2, true);
    await send([cmd('SET', key(16000), '1')]);
    const waiting = await send([cmd('FLUSHALL')]);
    const after = await send([cmd('SET', key(1), '2')]);
    barrier.close();
    await Promise.all([waiting.done, after.done]);
    assert.deepEqual(lengths(outputs), [1, 1]);
  });

  it('holds the batches of a source behind its barrier, not those of another', async () => {
    const { barrier, outputs, send } = setup(2, true);
    await send([cmd('SET', key(16000), '1')]);
    await send([cmd('FLUSHALL')]);
    await send([cmd('SET', key(16000), '2')]);
    // a batch of no source (a user's inject): nothing to order it after
    await barrier.submit(new SlotRouter().route([cmd('SET', key(16000), 'x')]), undefined, (parts) => parts.forEach((p, i) => outputs[i].push(p)));
    assert.deepEqual(outputs[1].map((p) => names(p.payload)), [[`SET ${key(16000)} 1`], [`SET ${key(16000)} x`]]);
    barrier.close();
  });
});
