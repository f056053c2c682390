import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from './harness';
import { NodeConnection } from '../lib/sink/connection';

describe('lib/sink NodeConnection', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let conn: NodeConnection;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    conn = new NodeConnection({ host: server.host, port: server.port });
    await conn.connect();
  });
  afterEach(() => conn.close());

  it('matches every reply to its command and keeps the errors of each batch apart', async () => {
    const opening = conn.sent; // connect's own PING (and AUTH) count too
    conn.send(['SET', 'a', '1']);
    conn.send(['INCR', 'a']);
    conn.send(['LPUSH', 'a', 'x'], null, 'first batch');
    const firstBatch = conn.sent;
    let got: unknown;
    conn.send(['GET', 'a'], (r) => (got = r));
    conn.send(['HSET', 'a', 'f', 'v'], null, 'second batch');
    await conn.replied(firstBatch);
    const first = conn.takeFailures(firstBatch);
    assert.deepEqual(first.map((f) => [f.error.code, f.tag, f.index - opening]), [['WRONGTYPE', 'first batch', 2]]);
    await conn.replied();
    assert.equal(String(got), '2');
    assert.deepEqual(conn.takeFailures().map((f) => f.tag), ['second batch']);
  });

  it('keeps its reply queue bounded when it never runs empty (batches always in flight)', async () => {
    // A full sync keeps later batches in flight while earlier ones are answered, so the queue of
    // pending replies may never run empty. Here each batch ends with WAIT 1 5, which (with no
    // replica) answers only once its timeout has passed, and the next batch is sent meanwhile:
    // the queue is never empty when replies arrive, and must still not keep a slot for every
    // command ever sent.
    const batch = 2000;
    const opening = conn.sent;
    let longest = 0;
    for (let b = 0; b < 30; b++) {
      for (let i = 0; i < batch; i++) conn.send(['SET', `k${i}`, 'v']);
      conn.send(['WAIT', 1, 5]);
      await conn.replied(conn.sent - 1);
      assert.ok(conn.pending > 0, 'the queue ran empty: the test no longer exercises a queue that never drains');
      longest = Math.max(longest, (conn as unknown as { handlers: unknown[] }).handlers.length);
    }
    await conn.replied();
    assert.equal(conn.sent - opening, 30 * (batch + 1));
    assert.ok(longest <= 2 * (batch + 1) + 4096, `${longest} reply slots kept after ${conn.sent} commands`);
    assert.equal(await server.command('GET', 'k1999'), 'v');
  });
});
