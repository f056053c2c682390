import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import type { ReplPosition } from '../lib/replication/link';
import { FilePositionStore } from '../lib/replication/position';
import { ReplicaSession, type ReplicaSessionOptions } from '../lib/replication/session';
import { startRedis, type RedisServer } from './harness';
import { until } from './support/wait';

async function masterOffset(c: Redis): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await c.info('replication'))?.[1]);
}

describe('replica session: spool, batches, positions, modes', function () {
  this.timeout(180_000);
  let server: RedisServer;
  let c: Redis;
  let dir: string;

  const running: ReplicaSession[] = [];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'session-'));
  });
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  before(async () => {
    server = await startRedis({ config: { 'client-output-buffer-limit': 'replica 32mb 8mb 10' } });
    c = server.client();
  });
  after(() => server.stop());

  function session(ops: Operation[], extra: Partial<ReplicaSessionOptions> = {}): ReplicaSession {
    const s = new ReplicaSession({
      shard: 'src',
      locate: async () => ({ host: server.host, port: server.port }),
      spoolDir: join(dir, 'spool'),
      positions: new FilePositionStore(join(dir, 'positions.json')),
      onBatch: async (batch) => {
        ops.push(...batch);
      },
      ...extra,
    });
    running.push(s);
    return s;
  }

  const incrs = (ops: Operation[]): number => ops.filter((o) => o.kind === 'command' && (o as CommandOp).name === 'INCR').length;

  it('copies the snapshot then the stream; a new session resumes from the saved position with nothing lost or doubled', async () => {
    await c.flushall();
    for (let i = 0; i < 50; i++) await c.set(`k${i}`, `v${i}`);
    const ops: Operation[] = [];
    const s1 = session(ops);
    await s1.start();
    await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot');
    assert.equal(ops.filter((o): o is KeyOp => o.kind === 'key').length, 50);
    for (let i = 0; i < 200; i++) await c.incr('n');
    let target = await masterOffset(c);
    await until(() => (s1.progress.offset ?? -1) >= target, 'the stream');
    assert.equal(s1.phase, 'streaming');
    await s1.stop();
    assert.equal(s1.phase, 'stopped');

    for (let i = 0; i < 100; i++) await c.incr('n'); // written while no session runs
    const ops2: Operation[] = [];
    const s2 = session(ops2);
    let fullResync = false;
    s2.on('full-resync', () => (fullResync = true));
    await s2.start();
    target = await masterOffset(c);
    await until(() => (s2.progress.offset ?? -1) >= target, 'the resumed stream');
    assert.equal(fullResync, false);
    assert.ok(!ops2.some((o) => o.kind === 'snapshot-begin'), 'partial resync, no new snapshot');
    assert.equal(incrs(ops) + incrs(ops2), 300);
    assert.equal(Number(await c.get('n')), 300);
    await s2.stop();
  });

  it('keeps the link while the consumer is stalled for 60 s under write load (client-output-buffer-limit replica 32mb 8mb 10)', async () => {
    await c.flushall();
    const ops: Operation[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    const s = session(ops, {
      onBatch: async (batch) => {
        if (first && batch.some((o) => o.kind === 'command')) {
          first = false;
          await gate; // the downstream stalls
        }
        ops.push(...batch);
      },
    });
    await s.start();
    await until(() => s.phase === 'streaming', 'streaming');
    // about 4 MB/s for 60 s: far past the 32 MB hard limit of a replica that stops reading
    const value = 'x'.repeat(1000);
    const writer = server.client();
    const started = Date.now();
    let written = 0;
    while (Date.now() - started < 60_000) {
      const p = writer.pipeline();
      for (let i = 0; i < 100; i++) p.rpush('big', value);
      await p.exec();
      written += 100;
      await new Promise((r) => setTimeout(r, 25));
    }
    const spooled = s.progress.spoolBytes;
    assert.ok(spooled > 100 * 1024 * 1024, `the spool absorbed ${spooled} bytes (far more than the 32 MB hard limit)`);
    assert.equal(s.reconnects, 0, `no reconnect (last error: ${s.lastError?.message})`);
    release();
    const target = await masterOffset(c);
    await until(() => (s.progress.offset ?? -1) >= target, 'the consumer to catch up', 120_000);
    assert.equal(ops.filter((o) => o.kind === 'command' && o.name === 'RPUSH').length, written);
    assert.equal(s.reconnects, 0);
    await s.stop();
  });

  it('full-only mode ends after the snapshot', async () => {
    await c.flushall();
    await c.set('only', '1');
    const ops: Operation[] = [];
    const s = session(ops, { mode: 'full' });
    const ended = new Promise((r) => s.once('end', r));
    await s.start();
    assert.equal(await ended, null);
    assert.equal(s.phase, 'done');
    assert.deepEqual(ops.map((o) => o.kind), ['snapshot-begin', 'key', 'snapshot-end']);
    await s.stop();
  });

  it('incremental-only mode hands on no snapshot, only later writes', async () => {
    await c.flushall();
    await c.set('before', '1');
    const ops: Operation[] = [];
    const s = session(ops, { mode: 'incremental' });
    await s.start();
    await until(() => s.phase === 'streaming', 'streaming');
    await c.set('after', '2');
    const target = await masterOffset(c);
    await until(() => (s.progress.offset ?? -1) >= target, 'the write');
    assert.deepEqual(
      ops.map((o) => (o.kind === 'command' ? `${o.name} ${o.args[0]}` : o.kind)),
      ['SET after'],
    );
    await s.stop();
  });

  it('where a sink confirms: saves, and measures as applied, only confirmed positions, also from a save deferred while batches were only handed on', async () => {
    await c.flushall();
    const ops: Operation[] = [];
    const handed: Array<ReplPosition | null> = [];
    const store = new FilePositionStore(join(dir, 'positions.json'));
    const s = session(ops, {
      positions: store,
      confirmedOnly: () => true,
      onBatch: async (batch, _s, position) => {
        ops.push(...batch);
        handed.push(position);
      },
    });
    await s.start();
    await until(() => s.phase === 'streaming', 'streaming');
    // the first stream position (the snapshot-end's) is applied: the reference for what follows
    await until(() => handed.some((p) => p !== null), 'a stream position handed on');
    const first = handed.find((p) => p !== null) as ReplPosition;
    await s.confirm(first);
    await until(async () => (await new FilePositionStore(join(dir, 'positions.json')).load('src'))?.offset === first.offset, 'the confirmed position saved', 3000);
    // handed on within the second after that save: the save is deferred, and nothing is confirmed meanwhile
    for (let i = 0; i < 50; i++) await c.incr('n');
    const target = await masterOffset(c);
    await until(() => (s.progress.offset ?? -1) >= target, 'the writes handed on');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await new FilePositionStore(join(dir, 'positions.json')).load('src'))?.offset, first.offset, 'the deferred save wrote what was confirmed, not what was handed on');
    let p = s.progress;
    assert.equal(p.caughtUp, false);
    assert.equal(p.applied, first.offset);
    assert.ok(p.lagBytes >= target - first.offset, `lag ${p.lagBytes} B`);
    assert.ok(p.lagMs >= 1500, `lag ${p.lagMs} ms`);
    // confirmed up to the last batch: caught up, no lag, and that is what is saved
    const last = handed[handed.length - 1] as ReplPosition;
    await s.confirm(last);
    p = s.progress;
    assert.equal(p.applied, last.offset);
    // what came after the last batch is link chatter (a PING every 10 s), if anything
    assert.equal(p.lagBytes, (p.received as number) - last.offset);
    assert.ok(p.lagBytes < 100, `lag ${p.lagBytes} B`);
    assert.equal(p.caughtUp, p.lagBytes === 0);
    await s.stop();
    assert.equal((await new FilePositionStore(join(dir, 'positions.json')).load('src'))?.offset, last.offset);
  });

  it('fails for good, with the reason, when the credentials are wrong', async () => {
    const ops: Operation[] = [];
    const s = session(ops, { link: { password: 'nope' } });
    const ended = new Promise<Error | null>((r) => s.once('end', r));
    await s.start();
    const err = await ended;
    assert.match(String(err?.message), /authentication|AUTH/);
    assert.equal(s.phase, 'failed');
    await s.stop();
  });
});
