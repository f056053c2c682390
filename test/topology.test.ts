import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { waitFor } from './support/wait';
import {
  diffShards,
  discoverTopology,
  parseClusterNodes,
  parseClusterShards,
  parseClusterSlots,
  pickNode,
  selectShards,
  TopologyWatcher,
  type NodeAddr,
  type RedisLike,
  type ShardInfo,
  type Topology,
  type TopologyDiff,
} from '../lib/cluster/topology';
import { formatSlotRanges, normalizeSlotRanges, parseSlotRanges, SLOT_COUNT, slotsOfShard, type SlotRange } from '../lib/cluster/slots';

const execFileAsync = promisify(execFile);

/** Every connection the code under test opened, so tests can check none is left open. */
const opened: Redis[] = [];

function connect(host: string, port: number): Promise<RedisLike> {
  // Fail fast on a dead seed instead of ioredis's default retrying.
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  opened.push(client);
  return Promise.resolve(client);
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Shards as every parser can tell them: without shard ids and health. */
function comparable(shards: ShardInfo[]): unknown {
  const node = ({ id, host, port }: NodeAddr): NodeAddr => ({ id, host, port });
  return shards.map((s) => ({ slots: s.slots, master: node(s.master), replicas: s.replicas.map(node) }));
}

const addr = (id: string, port: number, health?: string): NodeAddr => ({
  id,
  host: '10.0.0.1',
  port,
  ...(health === undefined ? {} : { health }),
});

const shard = (id: string, slots: Array<[number, number]>, master: NodeAddr, replicas: NodeAddr[] = []): ShardInfo => ({
  id,
  slots,
  master,
  replicas,
});

describe('topology', () => {
  describe('parsers and pure functions', () => {
    it('parseClusterNodes: ignores migration markers and handshakes, reads every address form', () => {
      const text = [
        'aaa 10.0.0.1:7000@17000,host-a myself,master - 0 0 1 connected 0-99 [100->-bbb] 200 201-300',
        'bbb :7001@17001 master - 0 0 2 connected 100-199 [100-<-aaa]',
        'ccc 10.0.0.3:7002 slave aaa 0 0 1 connected',
        'ddd ::1:7003@17003 slave,fail bbb 0 0 2 connected',
        'eee 10.0.0.5:7004@17004 master,fail - 0 0 3 disconnected',
        'fff 10.0.0.6:7005@17005 handshake - 0 0 0 connected',
        '',
      ].join('\n');
      assert.deepEqual(parseClusterNodes(text, 'seed'), [
        shard('aaa', [[0, 99], [200, 300]], { id: 'aaa', host: '10.0.0.1', port: 7000 }, [
          { id: 'ccc', host: '10.0.0.3', port: 7002 },
        ]),
        shard('bbb', [[100, 199]], { id: 'bbb', host: 'seed', port: 7001 }, [
          { id: 'ddd', host: '::1', port: 7003, health: 'failed' },
        ]),
      ]);
      assert.throws(() => parseClusterNodes('aaa 10.0.0.1:7000 master', 'seed'), /bad CLUSTER NODES line/);
      assert.throws(() => parseClusterNodes('aaa 10.0.0.1:7000 master - 0 0 1 connected 0-99999', 'seed'), /bad slot range/);
    });

    it('parseClusterShards: takes maps in any form, shard ids, TLS ports; skips masters without slots', () => {
      const node = (fields: Record<string, unknown>) => new Map(Object.entries(fields));
      const reply = [
        // 7.2+: a shard id, and a failed former master listed beside its successor.
        {
          id: 'shard-2',
          slots: [500, 999, 100, 199],
          nodes: [
            node({ id: 'old', port: 7000, endpoint: '10.0.0.1', role: 'master', health: 'failed' }),
            node({ id: 'new', port: 7001, 'tls-port': 8001, endpoint: '?', role: 'master', health: 'online' }),
          ],
        },
        ['slots', [0, 99], 'nodes', [['id', 'm1', 'port', 7002, 'endpoint', '', 'role', 'master', 'health', 'online'],
          ['id', 'r1', 'port', 7003, 'endpoint', 'r1.example', 'role', 'replica', 'health', 'loading']]],
        ['slots', [], 'nodes', [['id', 'empty', 'port', 7004, 'endpoint', '10.0.0.4', 'role', 'master', 'health', 'online']]],
      ];
      assert.deepEqual(parseClusterShards(reply, 'seed', true), [
        shard('m1', [[0, 99]], { id: 'm1', host: 'seed', port: 7002, health: 'online' }, [
          { id: 'r1', host: 'r1.example', port: 7003, health: 'loading' },
        ]),
        // The failed former master is no replica to read from.
        shard('shard-2', [[100, 199], [500, 999]], { id: 'new', host: 'seed', port: 8001, health: 'online' }),
      ]);
      assert.throws(() => parseClusterShards([['slots', [0, 1], 'nodes', []]], 'seed'), /lists no master/);
    });

    it('parseClusterSlots: merges a master\'s ranges; refuses replies without node ids', () => {
      const reply = [
        [0, 99, ['10.0.0.1', 7000, 'm1', []], ['?', 7001, 'r1', []]],
        [100, 199, ['10.0.0.2', 7002, 'm2', []]],
        [200, 300, ['10.0.0.1', 7000, 'm1', []], ['?', 7001, 'r1', []]],
      ];
      assert.deepEqual(parseClusterSlots(reply, 'seed'), [
        shard('m1', [[0, 99], [200, 300]], { id: 'm1', host: '10.0.0.1', port: 7000 }, [{ id: 'r1', host: 'seed', port: 7001 }]),
        shard('m2', [[100, 199]], { id: 'm2', host: '10.0.0.2', port: 7002 }),
      ]);
      assert.throws(() => parseClusterSlots([[0, 16383, ['10.0.0.1', 7000]]], 'seed'), /no node ids/);
    });

    it('parseClusterSlots with addressAsId names the nodes of a server before 4.0 host:port', () => {
      const reply = [
        [0, 8191, ['', 7000], ['10.0.0.3', 7001]],
        [8192, 16383, ['10.0.0.2', 7002]],
      ];
      assert.deepEqual(parseClusterSlots(reply, 'seed', { addressAsId: true }), [
        shard('seed:7000', [[0, 8191]], { id: 'seed:7000', host: 'seed', port: 7000 }, [{ id: '10.0.0.3:7001', host: '10.0.0.3', port: 7001 }]),
        shard('10.0.0.2:7002', [[8192, 16383]], { id: '10.0.0.2:7002', host: '10.0.0.2', port: 7002 }),
      ]);
    });

    it('slot ranges: written as shard names and messages show them, and read back', () => {
      const ranges: SlotRange[] = [[0, 5460], [6000, 6000], [10923, 16383]];
      assert.equal(formatSlotRanges(ranges), '0-5460,6000,10923-16383');
      assert.deepEqual(parseSlotRanges('0-5460,6000,10923-16383'), ranges);
      assert.throws(() => parseSlotRanges('0-x'), /bad slot: "x"/);
      assert.deepEqual(normalizeSlotRanges([[10, 20], [0, 9], [15, 30]]), [[0, 30]]);
      assert.throws(() => normalizeSlotRanges([[5, 16384]]), /bad slot range 5-16384/);
      const table = slotsOfShard('slots:0-2,16383') as Uint8Array;
      assert.deepEqual([table[0], table[2], table[3], table[16382], table[16383]], [1, 1, 0, 0, 1]);
      assert.equal(slotsOfShard('standalone'), null);
    });

    it('pickNode prefers a healthy replica when asked, else the master', () => {
      const s = shard('s', [[0, 16383]], addr('m', 1), [addr('a', 2, 'loading'), addr('b', 3, 'online'), addr('c', 4)]);
      assert.equal(pickNode(s, 'replica').id, 'b');
      assert.equal(pickNode(s, 'master').id, 'm');
      assert.equal(pickNode({ ...s, replicas: [addr('a', 2, 'failed')] }, 'replica').id, 'm');
      assert.equal(pickNode({ ...s, replicas: [] }, 'replica').id, 'm');
    });

    it('selectShards: all, indexes, first-slot ranges, ids, addresses; names the bad term', () => {
      const shards = [
        shard('s1', [[0, 5460]], addr('m1', 1), [addr('r1', 11)]),
        shard('s2', [[5461, 10922]], addr('m2', 2)),
        shard('s3', [[10923, 16383]], addr('m3', 3)),
      ];
      const ids = (selector: string): string[] => selectShards(shards, selector).map((s) => s.id);
      assert.deepEqual(ids('all'), ['s1', 's2', 's3']);
      assert.deepEqual(ids('*'), ['s1', 's2', 's3']);
      assert.deepEqual(ids('3, 1'), ['s1', 's3']);
      assert.deepEqual(ids('0-5460'), ['s1']);
      // A shard goes to the range holding its first slot, so a boundary inside it does not duplicate it.
      assert.deepEqual(ids('0-8191'), ['s1', 's2']);
      assert.deepEqual(ids('8192-16383'), ['s3']);
      assert.deepEqual(ids('100-200'), []);
      assert.deepEqual(ids('s2,r1'), ['s1', 's2']);
      assert.deepEqual(ids('10.0.0.1:3,2'), ['s2', 's3']);
      assert.throws(() => selectShards(shards, '1,4'), /"4".*there are 3 shards/);
      assert.throws(() => selectShards(shards, '0'), /"0"/);
      assert.throws(() => selectShards(shards, '10-5'), /"10-5"/);
      assert.throws(() => selectShards(shards, '0-16384'), /"0-16384"/);
      assert.throws(() => selectShards(shards, '1,,2'), /empty term/);
      assert.throws(() => selectShards(shards, ''), /empty term/);
      assert.throws(() => selectShards(shards, 'nope'), /"nope".*no shard/);
    });

    it('diffShards: failover without stable shard ids, resharding, new and gone shards', () => {
      const before = [
        shard('m1', [[0, 99]], addr('m1', 1), [addr('r1', 11)]),
        shard('m2', [[100, 199]], addr('m2', 2)),
        shard('m3', [[200, 299]], addr('m3', 3)),
      ];
      const after = [
        shard('r1', [[0, 99]], addr('r1', 11), [addr('m1', 1)]),
        shard('m2', [[100, 149]], addr('m2', 2), [addr('r2', 12)]),
        shard('m4', [[150, 299]], addr('m4', 4)),
      ];
      const diff = diffShards(before, after);
      assert.deepEqual(diff.masterChanged, [{ before: before[0], after: after[0] }]);
      assert.deepEqual(diff.slotsChanged, [{ before: before[1], after: after[1] }]);
      assert.deepEqual(diff.replicasChanged, [{ before: before[1], after: after[1] }]);
      assert.deepEqual(diff.added, [after[2]]);
      assert.deepEqual(diff.removed, [before[2]]);
      assert.ok(Object.values(diffShards(after, after)).every((list: unknown[]) => list.length === 0));
    });
  });

  describe('standalone source', () => {
    let master: RedisServer;
    let replica: RedisServer;
    before(async () => {
      [master, replica] = await Promise.all([startRedis(), startRedis()]);
    });
    after(() => Promise.all([master?.stop(), replica?.stop()]));

    it('is one shard named host:port owning every slot, found past a dead seed', async () => {
      const dead = { host: '127.0.0.1', port: await deadPort() };
      const topology = await discoverTopology(connect, [dead, { host: master.host, port: master.port }]);
      const id = `${master.host}:${master.port}`;
      assert.deepEqual(topology, {
        mode: 'standalone',
        answeredBy: { host: master.host, port: master.port },
        shards: [{ id, slots: [[0, SLOT_COUNT - 1]], master: { id, host: master.host, port: master.port }, replicas: [] }],
      });
      await assert.rejects(discoverTopology(connect, [dead]), new RegExp(`^Error: 127.0.0.1:${dead.port}: `));
      const other = { host: '127.0.0.1', port: await deadPort() };
      await assert.rejects(discoverTopology(connect, [dead, other]), new RegExp(`^Error: none of the 2 nodes answered \\(127.0.0.1:${dead.port}: .*; 127.0.0.1:${other.port}: `));
    });

    it('lists its replicas, which pickNode takes once online', async () => {
      await replica.command('REPLICAOF', master.host, master.port);
      const seeds = [{ host: master.host, port: master.port }];
      const [s] = await waitFor(async () => {
        const { shards } = await discoverTopology(connect, seeds);
        return shards[0].replicas[0]?.health === 'online' ? shards : undefined;
      }, 10_000, 'the replica online');
      assert.deepEqual(s.replicas, [
        { id: `${replica.host}:${replica.port}`, host: replica.host, port: replica.port, health: 'online' },
      ]);
      assert.equal(pickNode(s, 'replica').port, replica.port);
    });
  });

  describe('3 masters with a replica each', () => {
    let cluster: RedisCluster;
    let seeds: Array<{ host: string; port: number }>;
    let topology: Topology;

    before(async () => {
      cluster = await startCluster({ masters: 3, replicas: 1 });
      seeds = cluster.seeds;
      // Replicas report no replication offset until something is written; till then CLUSTER
      // SHARDS calls them 'loading' and CLUSTER SLOTS leaves them out.
      const writer = cluster.client();
      await Promise.all(Array.from({ length: 100 }, (_, i) => writer.set(`key:${i}`, i)));
      // Each node learns the others' offsets by gossip: wait until all of them know.
      const views = await waitFor(async () => {
        const all = await Promise.all(seeds.map((seed) => discoverTopology(connect, [seed])));
        const online = all.every((t) => t.shards.every((s) => s.replicas.length === 1 && s.replicas[0].health === 'online'));
        return online ? all : undefined;
      }, 15_000, 'every replica online in every view');
      topology = views[0];
    });
    after(() => cluster?.stop());

    it('reads 3 shards covering 0-16383 exactly once, each with its replica', async () => {
      assert.equal(topology.mode, 'cluster');
      assert.equal(topology.shards.length, 3);
      const ranges = topology.shards.flatMap((s) => s.slots);
      assert.equal(ranges[0][0], 0);
      assert.equal(ranges.at(-1)?.[1], SLOT_COUNT - 1);
      for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1] + 1);
      const masters = await cluster.masters();
      for (const s of topology.shards) {
        const master = masters.find((m) => m.port === s.master.port);
        assert.ok(master, `shard master ${s.master.port} is a master`);
        assert.equal(s.master.id, String(await master.command('CLUSTER', 'MYID')));
        // On 7.0 CLUSTER SHARDS has no shard id, so the master's node id stands in.
        assert.equal(s.id, s.master.id);
        assert.deepEqual(s.replicas.map((r) => r.port), (await cluster.replicasOf(master)).map((r) => r.port));
      }
    });

    it('reads the same from the live CLUSTER SLOTS and CLUSTER NODES replies', async () => {
      const client = (await connect(seeds[1].host, seeds[1].port)) as Redis;
      try {
        const fromShards = parseClusterShards(await client.call('CLUSTER', 'SHARDS'), seeds[1].host);
        const fromSlots = parseClusterSlots(await client.call('CLUSTER', 'SLOTS'), seeds[1].host);
        const fromNodes = parseClusterNodes(String(await client.call('CLUSTER', 'NODES')), seeds[1].host);
        assert.deepEqual(comparable(fromShards), comparable(topology.shards));
        assert.deepEqual(comparable(fromSlots), comparable(fromShards));
        assert.deepEqual(comparable(fromNodes), comparable(fromShards));
      } finally {
        client.disconnect();
      }
    });

    it('pickNode and selectShards work on the live shards', () => {
      for (const s of topology.shards) {
        assert.equal(pickNode(s, 'replica'), s.replicas[0]);
        assert.equal(pickNode(s, 'master'), s.master);
      }
      const [s1, s2, s3] = topology.shards;
      assert.deepEqual(selectShards(topology.shards, 'all'), [s1, s2, s3]);
      assert.deepEqual(selectShards(topology.shards, '1,3'), [s1, s3]);
      assert.deepEqual(selectShards(topology.shards, '0-5460'), [s1]);
      assert.deepEqual(selectShards(topology.shards, `${s3.id},${s2.replicas[0].id}`), [s2, s3]);
      assert.throws(() => selectShards(topology.shards, '1,x'), /"x"/);
    });

    it('TopologyWatcher reports a failover as a master change, periodically and on refresh()', async () => {
      const watcher = new TopologyWatcher(connect, seeds, { intervalMs: 200 });
      const changes: TopologyDiff[] = [];
      watcher.on('change', (_t, diff) => changes.push(diff));
      try {
        const first = await watcher.start();
        const everythingAdded: TopologyDiff = { added: first.shards, removed: [], masterChanged: [], slotsChanged: [], replicasChanged: [] };
        assert.deepEqual(changes, [everythingAdded]);

        const target = first.shards[1];
        const replica = cluster.nodes.find((n) => n.port === target.replicas[0].port) as RedisServer;
        await cluster.failover(replica);
        const started = Date.now();
        const diff = await waitFor(() => changes.find((d) => d.masterChanged.length > 0), 5000, 'the failover reported');
        assert.ok(Date.now() - started < 5000);
        assert.equal(diff.masterChanged.length, 1);
        const change = diff.masterChanged[0];
        assert.deepEqual(change.before, target);
        assert.equal(change.after.master.id, target.replicas[0].id);
        assert.deepEqual(change.after.slots, target.slots);
        assert.deepEqual([diff.added, diff.removed, diff.slotsChanged], [[], [], []]);
      } finally {
        await watcher.stop();
      }

      // No timer would notice the failback within this test: only refresh() can.
      const slow = new TopologyWatcher(connect, seeds, { intervalMs: 60_000 });
      try {
        const before = await slow.start();
        const promoted = before.shards[1];
        const failedBack = new Promise<TopologyDiff>((resolve) => slow.on('change', (_t, d) => resolve(d)));
        await cluster.failover(cluster.nodes.find((n) => n.port === promoted.replicas[0].port) as RedisServer);
        const now = await slow.refresh();
        assert.equal(now.shards[1].master.id, promoted.replicas[0].id);
        assert.deepEqual((await failedBack).masterChanged.map((c) => c.after), [now.shards[1]]);
      } finally {
        await slow.stop();
      }
    });

    it('TopologyWatcher.stop() closes its connections and discovers no more', async () => {
      const watcher = new TopologyWatcher(connect, seeds, { intervalMs: 20 });
      await watcher.start();
      await sleep(200);
      // Stopped in the middle of a discovery, which must end too.
      const pending = watcher.refresh();
      await watcher.stop();
      await assert.rejects(pending, /stopped/);
      const count = opened.length;
      await sleep(300);
      assert.equal(opened.length, count, 'no connection after stop()');
      await waitFor(() => opened.every((c) => c.status === 'end'), 2000, 'every connection closed');
      await assert.rejects(watcher.refresh(), /stopped/);
    });

    it('TopologyWatcher does not keep the process alive', async () => {
      const script = `
        const Redis = require('ioredis').default;
        const { TopologyWatcher } = require(${JSON.stringify(path.resolve(__dirname, '../lib/cluster/topology.ts'))});
        const connect = async (host, port) => new Redis({ host, port, lazyConnect: true });
        new TopologyWatcher(connect, ${JSON.stringify(seeds)}, { intervalMs: 50 })
          .start()
          .then((t) => console.log('shards', t.shards.length));
      `;
      const { stdout } = await execFileAsync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
        cwd: path.resolve(__dirname, '..'),
        timeout: 15_000,
      });
      assert.equal(stdout.trim(), 'shards 3');
    });
  });

  describe('custom slot layout', () => {
    let cluster: RedisCluster;
    after(() => cluster?.stop());

    it('reads multi-range shards and leaves out a master without slots', async () => {
      cluster = await startCluster({ slots: [[[5000, 5999], [0, 999]], [[1000, 1999]], []], replicas: 0 });
      const [a, b, empty] = cluster.nodes;
      const ids = (await Promise.all(cluster.nodes.map((n) => n.command('CLUSTER', 'MYID')))).map(String);
      const node = (n: RedisServer, id: string): NodeAddr => ({ id, host: n.host, port: n.port, health: 'online' });
      const { shards } = await discoverTopology(connect, [{ host: empty.host, port: empty.port }]);
      assert.deepEqual(shards, [
        shard(ids[0], [[0, 999], [5000, 5999]], node(a, ids[0])),
        shard(ids[1], [[1000, 1999]], node(b, ids[1])),
      ]);
      const client = (await connect(empty.host, empty.port)) as Redis;
      try {
        assert.deepEqual(comparable(parseClusterSlots(await client.call('CLUSTER', 'SLOTS'), empty.host)), comparable(shards));
        assert.deepEqual(comparable(parseClusterNodes(String(await client.call('CLUSTER', 'NODES')), empty.host)), comparable(shards));
      } finally {
        client.disconnect();
      }
      assert.deepEqual(selectShards(shards, '1000-4999'), [shards[1]]);
      assert.deepEqual(selectShards(shards, '2000-16383'), []);
    });
  });
});
