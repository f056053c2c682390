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
