import assert from 'node:assert/strict';
import { FlowControl } from '../lib/ops/flow-control';

/** Whether p has settled by the time the microtasks queued now have run. */
async function settledNow(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('FlowControl', () => {
  let n = 0;
  const fresh = (): FlowControl => FlowControl.for(`flow-control-test-${++n}`);

  it('changed() resolves at the next acquire, ack, attach and detach, one promise for all who ask in between', async () => {
    const fc = fresh();
    const first = fc.changed();
    assert.equal(fc.changed(), first);
    assert.equal(await settledNow(first), false);
    const seq = await fc.acquire('s', 1);
    assert.equal(await settledNow(first), true);
    assert.equal(fc.pending, 1);

    const afterAcquire = fc.changed();
    assert.notEqual(afterAcquire, first);
    fc.attach('sink');
    assert.equal(await settledNow(afterAcquire), true);
    const afterAttach = fc.changed();
    fc.attach('sink');
    assert.equal(await settledNow(afterAttach), false, 'attaching an attached sink changes nothing');
    fc.ack(seq);
    assert.equal(await settledNow(afterAttach), true);
    assert.equal(fc.pending, 0);

    const afterAck = fc.changed();
    fc.detach('sink');
    assert.equal(await settledNow(afterAck), true);
    assert.equal(fc.attached, false);
  });

  it('changed() resolves when the source is dropped', async () => {
    const id = `flow-control-test-${++n}`;
    const fc = FlowControl.for(id);
    await fc.acquire('s', 1);
    const change = fc.changed();
    FlowControl.drop(id);
    assert.equal(await settledNow(change), true);
    assert.equal(fc.pending, 0);
  });
});

describe('FlowControl: which position is applied', () => {
  let n = 0;
  const fresh = (): { fc: FlowControl; applied: unknown[] } => {
    const fc = FlowControl.for(`flow-control-applied-${++n}`);
    const applied: unknown[] = [];
    fc.onApplied = (_shard, position) => applied.push(position);
    return { fc, applied };
  };

  it('reports a position once its batch and every batch before it are acknowledged, acknowledged in any order', async () => {
    const { fc, applied } = fresh();
    fc.attach('sink');
    const a = await fc.acquire('s', 10);
    const b = await fc.acquire('s', 20);
    fc.ack(b);
    assert.deepEqual(applied, [], 'the later batch alone says nothing of the earlier one');
    fc.ack(a);
    assert.deepEqual(applied, [20]);
  });

  it('a position passed without a batch (link chatter) is applied at once when nothing is pending, else behind the pending batches', async () => {
    const { fc, applied } = fresh();
    fc.attach('sink');
    fc.pass('s', 5);
    assert.deepEqual(applied, [5]);
    const a = await fc.acquire('s', 10);
    fc.pass('s', 12);
    fc.pass('s', 14);
    assert.deepEqual(applied, [5]);
    fc.ack(a);
    assert.deepEqual(applied, [5, 14]);
  });

  it('a failed sink is the fault, and its batch keeps everything after it unapplied', async () => {
    const { fc, applied } = fresh();
    fc.attach('sink');
    await fc.acquire('s', 10);
    fc.fail('sink', 'WRONGTYPE Operation against a key holding the wrong kind of value');
    fc.pass('s', 12);
    assert.deepEqual(applied, []);
    assert.deepEqual(fc.fault, { sink: 'sink', kind: 'failed', reason: 'WRONGTYPE Operation against a key holding the wrong kind of value' });
  });

  it('a sink closing with batches in flight: nothing later is applied, though another sink acknowledges it, until the source starts again', async () => {
    const { fc, applied } = fresh();
    fc.attach('old');
    await fc.acquire('s', 10); // in flight to the sink that closes: lost
    fc.detach('old');
    assert.equal(fc.fault?.kind, 'gone');
    fc.attach('new');
    const b = await fc.acquire('s', 20);
    fc.ack(b);
    fc.pass('s', 22);
    assert.deepEqual(applied, [], 'past the lost batch nothing is applied');
    fc.reset();
    assert.equal(fc.fault, null);
    assert.equal(fc.attached, true, 'the sinks stay attached');
    const c = await fc.acquire('s', 30);
    fc.ack(c);
    assert.deepEqual(applied, [30]);
  });

  it('a sink closing with everything applied is no fault', async () => {
    const { fc } = fresh();
    fc.attach('sink');
    fc.ack(await fc.acquire('s', 10));
    fc.detach('sink');
    assert.equal(fc.fault, null);
  });
});
