import assert from 'node:assert/strict';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import type { EndpointConfig } from '../lib/endpoint';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { DestinationWriter, type WriterOptions } from '../lib/sink/writer';

const SOURCE = { source: 'dbs-test' };
const BEGIN: Operation = { kind: 'snapshot-begin', shard: 'standalone', replid: 'r1', offset: 0 };

function command(db: number, offset: number, name: string, ...args: string[]): CommandOp {
  const keyless = ['SWAPDB', 'FLUSHALL', 'FLUSHDB'].includes(name);
  const keys = keyless ? [] : name === 'COPY' ? [0, 1] : [0];
  return { kind: 'command', db, name, args: args.map((a) => Buffer.from(a)), keys, shard: 'standalone', offset, tx: 0 };
}

function key(db: number, name: string, value: string): KeyOp {
  return {
    kind: 'key', db, key: Buffer.from(name), type: 'string', value: Buffer.from(value), rdbType: 0, expireMs: null,
    idleSeconds: null, lfuFreq: null, raw: null, chunk: null, offset: 0, shard: 'standalone', rdbVersion: 10,
  };
}

/** A writer that applies `batches` one by one, then closes (a sink that stops, or is killed after its last acknowledgement). */
async function run(endpoint: EndpointConfig, batches: Operation[][], opts: Partial<WriterOptions> = {}): Promise<DestinationWriter> {
  const writer = new DestinationWriter({ endpoint, ...opts });
  await writer.connect();
  try {
    for (const b of batches) await writer.apply(b, SOURCE);
  } finally {
    writer.close();
  }
  return writer;
}

describe('lib/sink DestinationWriter: dbs on a standalone destination', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let endpoint: EndpointConfig;
  const get = async (db: number, k: string): Promise<unknown> => {
    const c = server.client({ db });
    try {
      return await c.get(k);
    } finally {
      c.disconnect();
    }
  };
  const ownKeysIn = async (db: number): Promise<string[]> => {
    const c = server.client({ db });
    try {
      return (await c.keys('redis-sync:*')).sort();
    } finally {
      c.disconnect();
    }
  };

  beforeEach(async () => {
    server = await startRedis();
    endpoint = { mode: 'standalone', host: server.host, port: server.port };
  });
  afterEach(async () => {
    await server.stop();
  });

  for (const exactlyOnce of [true, false]) {
    it(`SWAPDB 0 1 swaps the dbs once and the checkpoints stay in db 0, where a restarted sink finds them (exactly once ${exactlyOnce ? 'on' : 'off'})`, async () => {
      const stream = [[command(0, 10, 'INCR', 'a')], [command(1, 11, 'SET', 'b', 'v')], [command(0, 12, 'SWAPDB', '0', '1')], [command(0, 13, 'INCR', 'c')]];
      await run(endpoint, [[BEGIN], ...stream], { exactlyOnce });
      const expect = async (): Promise<void> => {
        assert.deepEqual([await get(0, 'b'), await get(0, 'c'), await get(1, 'a'), await get(0, 'a'), await get(1, 'b')], ['v', '1', '1', null, null]);
        assert.deepEqual(await ownKeysIn(1), [], 'checkpoint keys in db 1');
        assert.ok((await ownKeysIn(0)).includes('redis-sync:ckpt:global'));
      };
      await expect();
      // a restart: the source resumes from an earlier saved position and sends it all again;
      // without exactly once an INCR may be repeated, but a SWAPDB never (twice, it is undone)
      const again = await run(endpoint, exactlyOnce ? stream : [stream[2]], { exactlyOnce });
      await expect();
      assert.equal(again.stats.skippedReplays, exactlyOnce ? 4 : 1);
    });
  }

  it('SWAPDB 0 1 over a db 1 that holds checkpoint keys of its own (an earlier run) keeps the live ones', async () => {
    const c1 = server.client({ db: 1 });
    await c1.hset('redis-sync:ckpt:global', 'stale', 'x');
    c1.disconnect();
    await run(endpoint, [[BEGIN], [command(0, 10, 'INCR', 'a')], [command(0, 11, 'SWAPDB', '1', '0')]]);
    const again = await run(endpoint, [[command(0, 10, 'INCR', 'a')], [command(0, 11, 'SWAPDB', '1', '0')]]);
    assert.equal(again.stats.skippedReplays, 2);
    assert.equal(await get(1, 'a'), '1');
  });

  for (const flush of [command(3, 11, 'FLUSHALL'), command(0, 11, 'FLUSHDB')]) {
    it(`${flush.name}${flush.name === 'FLUSHDB' ? ' of db 0' : ''} keeps the sink's record: after a restart nothing after it is applied twice`, async () => {
      await run(endpoint, [[BEGIN], [command(0, 10, 'INCR', 'x')], [flush], [command(0, 12, 'INCR', 'n')]]);
      assert.equal(await get(0, 'x'), null);
      // the source saved a position after the flush: only what follows it comes again
      const again = await run(endpoint, [[command(0, 12, 'INCR', 'n')]]);
      assert.equal(await get(0, 'n'), '1');
      assert.equal(again.stats.skippedReplays, 1);
    });
  }

  it('an operation of a db beyond the destination\'s dbs is dropped and counted, as are MOVE and SWAPDB with such a db; the rest runs', async () => {
    await server.stop();
    server = await startRedis({ config: { databases: '4' } });
    endpoint = { mode: 'standalone', host: server.host, port: server.port };
    const told: string[] = [];
    const w = await run(
      endpoint,
      [
        [BEGIN, key(0, 'k', 'v'), key(0, 'k2', 'v2'), key(6, 'far', 'x')],
        [command(5, 10, 'SET', 'a', '1'), command(0, 11, 'MOVE', 'k', '6'), command(0, 12, 'COPY', 'k2', 'k3', 'DB', '3'), command(5, 13, 'MOVE', 'gone', '0')],
        [command(0, 14, 'SWAPDB', '0', '7')],
        [command(0, 15, 'SWAPDB', '2', '3')],
        [command(0, 16, 'SET', 'after', 'yes')],
      ],
      { onDropped: (label, why) => told.push(`${label}: ${why}`) },
    );
    assert.deepEqual(w.stats.dropped, { 'db 6': 2, 'db 5': 1, MOVE: 1, SWAPDB: 1 });
    assert.equal(told.length, 4, told.join('\n'));
    assert.match(told.find((t) => t.startsWith('SWAPDB')) ?? '', /SWAPDB 0 7 in db 0 at source offset 14 is dropped: the destination has db 0 but not db 7 \(the destination has 4 dbs/);
    assert.match(told.find((t) => t.startsWith('db 6')) ?? '', /operations of db 6 are dropped \(the first: the snapshot key "far"\).*redis-op-filter/);
    // MOVE out of db 0 took the key away there; COPY … DB 3 and SWAPDB 2 3 ran
    assert.deepEqual([await get(0, 'k'), await get(2, 'k3'), await get(0, 'after')], [null, 'v2', 'yes']);
  });

  it('finds how many dbs there are by SELECT when CONFIG is not available', async () => {
    await server.stop();
    server = await startRedis({ config: { databases: '3', 'rename-command': 'CONFIG ""' } });
    endpoint = { mode: 'standalone', host: server.host, port: server.port };
    const w = await run(endpoint, [[BEGIN, key(2, 'in', 'yes'), key(3, 'out', 'no')]]);
    assert.deepEqual(w.stats.dropped, { 'db 3': 1 });
    assert.equal(await get(2, 'in'), 'yes');
  });
});

describe('lib/sink DestinationWriter: dbs on a cluster destination (db 0 only), without an op filter', function () {
  this.timeout(120_000);
  let cluster: RedisCluster;
  let endpoint: EndpointConfig;
  before(async () => {
    cluster = await startCluster({ masters: 3, replicas: 0 });
    endpoint = { mode: 'cluster', seeds: cluster.seeds };
  });
  after(async () => {
    await cluster.stop();
  });

  it("FLUSHALL keeps the sink's record on the master of slot 0: after a restart nothing after it is applied twice", async () => {
    await run(endpoint, [[BEGIN], [command(0, 10, 'INCR', 'x')], [command(0, 11, 'FLUSHALL')], [command(0, 12, 'INCR', 'n')]]);
    const again = await run(endpoint, [[command(0, 12, 'INCR', 'n')]]);
    const c = cluster.client();
    try {
      assert.deepEqual([await c.get('x'), await c.get('n')], [null, '1']);
    } finally {
      c.disconnect();
    }
    assert.equal(again.stats.skippedReplays, 1);
  });

  it('MOVE, COPY … DB, SWAPDB and what other dbs do never stop it: db 0 becomes what the source\'s is, the rest is dropped and counted', async () => {
    const told: string[] = [];
    const w = await run(
      endpoint,
      [
        [BEGIN, key(0, 'k', 'v'), key(0, 'm', 'm'), key(2, 'elsewhere', 'x'), key(0, 'z', 'flushed')],
        // the source had db 3 selected: FLUSHALL empties every db, db 0 too
        [command(3, 10, 'FLUSHALL')],
        [command(0, 11, 'SET', 'k', 'v'), command(0, 12, 'SET', 'm', 'm')],
        [command(0, 13, 'MOVE', 'k', '1'), command(1, 14, 'SET', 'j', '1'), command(1, 15, 'INCR', 'j')],
        [command(0, 16, 'COPY', 'm', 'm-copy', 'DB', '1'), command(0, 17, 'COPY', 'm', 'm-same-db', 'DB', '0')],
        [command(0, 18, 'SWAPDB', '1', '2')],
        [command(0, 19, 'SWAPDB', '0', '1')],
        [command(0, 20, 'SWAPDB', '0', '0')],
        [command(0, 21, 'SET', 'after', 'yes')],
      ],
      { onDropped: (label, why) => told.push(`${label}: ${why}`) },
    );
    assert.deepEqual(w.stats.dropped, { 'db 2': 1, 'db 1': 5, SWAPDB: 1 });
    assert.deepEqual(told.map((t) => t.split(':')[0]).sort(), ['SWAPDB', 'db 1', 'db 2']);
    assert.match(told.find((t) => t.startsWith('db 1')) ?? '', /the operations of db 1 are dropped \(the first: MOVE of key "k" in db 0 at source offset 13\): a cluster has db 0 only/);
    const c = cluster.client();
    try {
      const names = ['k', 'm', 'm-same-db', 'z', 'after', 'elsewhere', 'm-copy'];
      assert.deepEqual(await Promise.all(names.map((n) => c.get(n))), [null, 'm', 'm', null, 'yes', null, null]);
    } finally {
      c.disconnect();
    }
  });
});
