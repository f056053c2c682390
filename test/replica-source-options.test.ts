/**
 * ReplicaSource / ReplicaSession / ReplicaLink options against real servers: TLS (and the
 * errors of a TLS mismatch), preferReplica (standalone and cluster), the shards selector,
 * REPLCONF GETACK (WAIT), a replica node without a master link (NOMASTERLINK), and the idle
 * timeout against a fault-injecting fake master.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import calculateSlot from 'cluster-key-slot';
import Redis from 'ioredis';
import type { EndpointConfig } from '../lib/endpoint';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { ReplicationDecoder } from '../lib/replication/decoder';
import { ReplicationError } from '../lib/replication/errors';
import { ReplicaLink } from '../lib/replication/link';
import { FilePositionStore } from '../lib/replication/position';
import { ReplicaSession } from '../lib/replication/session';
import { ReplicaSource, type ReplicaSourceOptions } from '../lib/replication/source';
import { RespParser } from '../lib/resp/parser';
import { HOST, startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { freePort } from './support/net';
import { makeTestCertificates, type TestCertificates } from './support/tls';
import { until } from './support/wait';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const keyNames = (ops: Operation[]): string[] =>
  ops.filter((o): o is KeyOp => o.kind === 'key').map((k) => k.key.toString()).sort();
const commandsNamed = (ops: Operation[], name: string): CommandOp[] =>
  ops.filter((o): o is CommandOp => o.kind === 'command' && o.name === name);
const snapshotEnds = (ops: Operation[]): number => ops.filter((o) => o.kind === 'snapshot-end').length;

/** The replica connections a node serves (CLIENT LIST TYPE replica), as their client addresses. */
async function replicaClients(server: RedisServer): Promise<string[]> {
  const list = String(await server.command('CLIENT', 'LIST', 'TYPE', 'replica')).trim();
  return list === '' ? [] : list.split('\n').map((line) => /addr=(\S+)/.exec(line)?.[1] ?? line);
}

/** Resolves once a master's INFO replication lists `count` replicas in state online. */
async function replicasOnline(master: RedisServer, count: number): Promise<void> {
  await until(async () => (String(await master.command('INFO', 'replication')).match(/state=online/g) ?? []).length === count, `${count} online replica(s) of ${master.port}`);
}

/**
 * Resolves once every replica of a master has acknowledged all it wrote: a replica node's
 * snapshot holds exactly the master's keys only then. (After a diskless full sync, a master
 * streams only from the replica's next ACK, up to a second later.)
 */
async function caughtUp(master: RedisServer): Promise<void> {
  await until(async () => {
    const [, offset, replicas] = (await master.command('ROLE')) as [string, number, Array<[string, string, string]>];
    return replicas.length > 0 && replicas.every((r) => Number(r[2]) === Number(offset));
  }, `the replicas of ${master.port} caught up`);
}

/** Sources and sessions of a test, stopped by afterEach whatever the test's outcome. */
const running: Array<{ stop(): Promise<unknown> }> = [];
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'source-options-'));
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A ReplicaSource collecting every operation into ops; stopped after the test. */
function source(ops: Operation[], opts: Partial<ReplicaSourceOptions> & Pick<ReplicaSourceOptions, 'endpoint'>): ReplicaSource {
  const s = new ReplicaSource({
    dir,
    topologyIntervalMs: 500,
    onBatch: async (batch) => {
      ops.push(...batch);
    },
    ...opts,
  });
  running.push(s);
  return s;
}

describe('replica source options against real servers', function () {
  this.timeout(60_000);

  describe('TLS', () => {
    let certs: TestCertificates;
    let pem: TestCertificates['pem'];
    /** TLS only: its plain port is closed once started (the harness needs it for startup). */
    let tlsOnly: RedisServer;
    let tlsOnlyPort: number;
    let tlsClient: Redis;
    let plain: RedisServer;
    /** A TLS master and its replica (replicating over TLS), each with a plain port too. */
    let master: RedisServer;
    let replica: RedisServer;
    let masterTls: number;
    let replicaTls: number;

    // A private CA and one certificate for the DNS name redis.test (so the name check runs
    // against 127.0.0.1), usable by servers and clients alike, all made with openssl.
    before(async () => {
      certs = await makeTestCertificates();
      pem = certs.pem;
      const tlsConfig = certs.serverConfig;
      [tlsOnlyPort, masterTls, replicaTls] = [await freePort(), await freePort(), await freePort()];
      // With its plain port gone, the harness's SHUTDOWN cannot reach it: SIGKILL soon instead.
      [tlsOnly, plain, master] = await Promise.all([
        startRedis({ config: tlsConfig(tlsOnlyPort, 'yes'), stopTimeoutMs: 300 }),
        startRedis(),
        startRedis({ config: tlsConfig(masterTls, 'optional') }),
      ]);
      assert.equal(await tlsOnly.command('CONFIG', 'SET', 'port', '0'), 'OK');
      await assert.rejects(tlsOnly.command('PING'), 'the plain port is closed');
      tlsClient = new Redis({ host: HOST, port: tlsOnlyPort, tls: { ...pem, servername: 'redis.test' } });
      // tls-replication: the replica reaches its master's TLS port and announces its own TLS port.
      replica = await startRedis({
        config: { ...tlsConfig(replicaTls, 'optional'), 'tls-replication': 'yes', replicaof: `${HOST} ${masterTls}` },
      });
      await replicasOnline(master, 1);
    });
    after(async () => {
      tlsClient?.disconnect();
      await Promise.all([tlsOnly?.stop(), plain?.stop(), replica?.stop(), master?.stop()]);
      certs?.remove();
    });

    const tlsEndpoint = (port: number, tls: Partial<NonNullable<EndpointConfig['tls']>> = {}): EndpointConfig => ({
      mode: 'standalone',
      host: HOST,
      port,
      connectTimeoutMs: 1500,
      tls: { enabled: true, ca: pem.ca, servername: 'redis.test', ...tls },
    });

    it('copies the snapshot of a TLS-only server (CA, server name and client certificate checked), then streams every write', async () => {
      await tlsClient.flushall();
      for (let i = 0; i < 200; i++) await tlsClient.set(`tls:${i}`, `v${i}`);
      await tlsClient.hset('tls:hash', 'f', 'v');
      const ops: Operation[] = [];
      const src = source(ops, { endpoint: tlsEndpoint(tlsOnlyPort, { cert: pem.cert, key: pem.key }) });
      await src.start();
      await until(() => snapshotEnds(ops) === 1, 'the snapshot');
      const expected = [...Array.from({ length: 200 }, (_, i) => `tls:${i}`), 'tls:hash'].sort();
      assert.deepEqual(keyNames(ops), expected);
      for (let i = 0; i < 150; i++) await tlsClient.incr('tls:counter');
      await until(() => commandsNamed(ops, 'INCR').length >= 150, '150 INCRs');
      await sleep(300); // anything doubled would arrive now
      assert.equal(commandsNamed(ops, 'INCR').length, 150);
      assert.equal(Number(await tlsClient.get('tls:counter')), 150);
      assert.equal(src.progress.shards[0].node, `${HOST}:${tlsOnlyPort}`);
      assert.equal(src.progress.reconnects, 0);
    });

    it('stops on TLS against a plain server with a TLS error naming the handshake, within the connect timeout', async () => {
      const ends: Array<{ err: ReplicationError | null; at: number }> = [];
      const retries: unknown[] = [];
      const src = source([], { endpoint: tlsEndpoint(plain.port) });
      const t0 = Date.now();
      src.on('retry', (_shard: string, err: ReplicationError) => retries.push(err));
      src.on('end', (err: ReplicationError | null) => ends.push({ err, at: Date.now() - t0 }));
      await src.start();
      await until(() => ends.length === 1, 'the end', 5000);
      const { err, at } = ends[0];
      assert.ok(at >= 1400 && at < 3000, `after the 1500 ms connect timeout, not a hang (${at} ms)`);
      assert.equal(err?.code, 'TLS');
      assert.equal(err?.retryable, false);
      assert.match(err?.message ?? '', new RegExp(`^${HOST}:${plain.port}: no TLS handshake after 1500 ms .*untick "Use TLS"`));
      assert.deepEqual(retries, [], 'a setting to change, not retried');
      assert.equal(src.progress.phase, 'failed');
    });

    it('stops on plain TCP against a TLS-only port at once, saying it needs TLS', async () => {
      const ends: Array<ReplicationError | null> = [];
      const src = source([], { endpoint: { mode: 'standalone', host: HOST, port: tlsOnlyPort, connectTimeoutMs: 1500 } });
      src.on('end', (err: ReplicationError | null) => ends.push(err));
      const t0 = Date.now();
      await src.start();
      await until(() => ends.length === 1, 'the end', 5000);
      assert.ok(Date.now() - t0 < 1000, 'at once, not after a timeout');
      assert.equal(ends[0]?.code, 'TLS_REQUIRED');
      assert.equal(ends[0]?.retryable, false);
      assert.match(ends[0]?.message ?? '', new RegExp(`^${HOST}:${tlsOnlyPort}: .* as a TLS-only port does to a plain connection: tick "Use TLS"`));
    });

    it('retries a connection dropped unanswered once the link has worked: a proxy whose server is down, not a TLS-only port', async () => {
      // a TCP proxy in front of the plain server that, switched to "down", accepts and drops at once
      let down = false;
      const proxied = new Set<net.Socket>();
      const proxy = net.createServer((client) => {
        if (down) return client.destroy();
        const upstream = net.connect(plain.port, HOST);
        proxied.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      const port = await freePort();
      await new Promise<void>((resolve) => proxy.listen(port, HOST, resolve));
      try {
        await plain.command('SET', 'through-proxy', 'x');
        const ops: Operation[] = [];
        const retries: ReplicationError[] = [];
        const ends: unknown[] = [];
        const src = source(ops, { endpoint: { mode: 'standalone', host: HOST, port, connectTimeoutMs: 1500 } });
        src.on('retry', (_shard: string, err: ReplicationError) => retries.push(err));
        src.on('end', (err) => ends.push(err));
        await src.start();
        await until(() => snapshotEnds(ops) === 1, 'the snapshot through the proxy');
        down = true;
        for (const s of proxied) s.destroy();
        await until(() => retries.some((e) => e.code === 'TLS_REQUIRED'), 'a connection dropped unanswered', 10_000);
        assert.deepEqual(ends, [], 'retried, not stopped');
        down = false;
        await plain.command('SET', 'after-outage', 'y');
        await until(() => commandsNamed(ops, 'SET').some((c) => c.args[0].toString() === 'after-outage'), 'the write made after the outage', 20_000);
        assert.deepEqual(ends, []);
      } finally {
        proxy.close();
      }
    });

    it('with preferReplica, links over TLS to the replica node, not to the master', async () => {
      await master.command('SET', 'pr-tls', 'x');
      await caughtUp(master);
      const ops: Operation[] = [];
      const src = source(ops, { endpoint: tlsEndpoint(masterTls), preferReplica: true });
      await src.start();
      await until(() => snapshotEnds(ops) === 1, 'the snapshot');
      assert.equal(src.progress.shards[0].node, `${HOST}:${replicaTls}`);
      assert.equal((await replicaClients(replica)).length, 1, 'our link is on the replica');
      assert.equal((await replicaClients(master)).length, 1, 'the master serves its replica only');
      assert.ok(keyNames(ops).includes('pr-tls'));
      for (let i = 0; i < 40; i++) await master.command('INCR', 'pr-tls:n');
      await until(() => commandsNamed(ops, 'INCR').length >= 40, '40 INCRs');
      await sleep(300);
      assert.equal(commandsNamed(ops, 'INCR').length, 40);
    });
  });

  describe('preferReplica on a standalone master with one replica', () => {
    let master: RedisServer;
    let replica: RedisServer;
    before(async () => {
      master = await startRedis();
      replica = await startRedis({ config: { replicaof: `${HOST} ${master.port}` } });
      await replicasOnline(master, 1);
    });
    after(async () => {
      await Promise.all([replica?.stop(), master?.stop()]);
    });

    it('replicates from the replica node, and every write on the master arrives exactly once', async () => {
      for (let i = 0; i < 100; i++) await master.command('SET', `k:${i}`, `v${i}`);
      await caughtUp(master);
      const ops: Operation[] = [];
      const src = source(ops, { endpoint: { mode: 'standalone', host: HOST, port: master.port }, preferReplica: true });
      await src.start();
      await until(() => snapshotEnds(ops) === 1, 'the snapshot');
      assert.equal(src.progress.shards.length, 1);
      assert.equal(src.progress.shards[0].node, `${HOST}:${replica.port}`);
      assert.equal((await replicaClients(replica)).length, 1, 'our link is on the replica');
      assert.equal((await replicaClients(master)).length, 1, 'the master serves its real replica only');
      assert.deepEqual(keyNames(ops), Array.from({ length: 100 }, (_, i) => `k:${i}`).sort());

      const c = master.client();
      for (let i = 0; i < 200; i++) await c.incr(`n:${i % 7}`);
      await c.rpush('list', 'a', 'b', 'c');
      await until(() => commandsNamed(ops, 'RPUSH').length >= 1, 'the RPUSH');
      await sleep(300);
      assert.equal(commandsNamed(ops, 'INCR').length, 200);
      assert.equal(commandsNamed(ops, 'RPUSH').length, 1);
      for (let k = 0; k < 7; k++) {
        assert.equal(commandsNamed(ops, 'INCR').filter((o) => o.args[0].toString() === `n:${k}`).length, Number(await c.get(`n:${k}`)));
      }
      const masterOffset = Number(/master_repl_offset:(\d+)/.exec(await c.info('replication'))?.[1]);
      await until(() => src.progress.shards[0].received === masterOffset, `offset ${masterOffset} (the master's) via the replica`);
    });
  });

  describe('a source whose nodes are discovered first (a cluster, or preferReplica)', () => {
    it('retries seeds that cannot be reached, named, and starts once one answers', async () => {
      const server = await startRedis();
      await server.command('SET', 'late-seed', 'x');
      const port = await freePort();
      const ops: Operation[] = [];
      const retries: Array<[string, ReplicationError]> = [];
      const ends: unknown[] = [];
      const src = source(ops, { endpoint: { mode: 'standalone', host: HOST, port, connectTimeoutMs: 1000 }, preferReplica: true });
      src.on('retry', (shard: string, err: ReplicationError) => retries.push([shard, err]));
      src.on('end', (err) => ends.push(err));
      await src.start(); // resolves: the seeds are asked again in the background
      await until(() => retries.length >= 2, 'two retries');
      assert.deepEqual(retries.map(([shard, err]) => [shard, err.code]).slice(0, 2), [['topology', 'CONNECT'], ['topology', 'CONNECT']]);
      assert.match(retries[0][1].message, /the source cannot be reached: .*ECONNREFUSED/);
      // a forwarder in front of the server starts listening on the seed's port only now
      const forwarder = net.createServer((client) => {
        const upstream = net.connect(server.port, HOST);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve) => forwarder.listen(port, HOST, resolve));
      try {
        await until(() => snapshotEnds(ops) === 1, 'the snapshot once the seed answers');
        assert.deepEqual(keyNames(ops), ['late-seed']);
        assert.deepEqual(ends, []);
        await src.stop();
      } finally {
        forwarder.close();
        await server.stop();
      }
    });

    it('stops at once, AUTH, when a seed refuses the credentials', async () => {
      const server = await startRedis({ config: { requirepass: 'right' } });
      try {
        const src = source([], { endpoint: { mode: 'standalone', host: HOST, port: server.port, password: 'wrong' }, preferReplica: true });
        await assert.rejects(src.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'AUTH' && !e.retryable && /WRONGPASS.*check the username and password of the source endpoint/.test(e.message));
      } finally {
        await server.stop();
      }
    });
  });

  describe('a 3-master cluster with replicas', () => {
    let cluster: RedisCluster;
    let masters: RedisServer[];
    let replicas: RedisServer[];
    const KEYS = 300;
    before(async () => {
      cluster = await startCluster({ masters: 3, replicas: 1 });
      const c = cluster.client();
      for (let i = 0; i < KEYS; i++) await c.set(`key:${i}`, `v${i}`);
      masters = await cluster.masters();
      replicas = await cluster.replicas();
      for (const m of masters) await caughtUp(m);
      // CLUSTER SHARDS (7.0) calls a replica 'loading' until gossip brings a nonzero offset of
      // it, and pickNode then falls back to the master.
      await until(async () => {
        for (const n of cluster.nodes) {
          const shards = JSON.stringify(await n.command('CLUSTER', 'SHARDS'));
          if ((shards.match(/"health","online"/g) ?? []).length !== 6) return false;
        }
        return true;
      }, 'every node seen online by every node');
    });
    after(async () => {
      await cluster?.stop();
    });

    const slotOwner = async (slot: number): Promise<RedisServer> => {
      const m = await cluster.masterForSlot(slot);
      assert.ok(m, `slot ${slot} is served`);
      return m;
    };
    const keysOf = async (node: RedisServer): Promise<string[]> => ((await node.command('KEYS', '*')) as string[]).sort();

    it('with preferReplica, links every shard to a replica of that shard', async () => {
      const ops: Operation[] = [];
      const src = source(ops, { endpoint: { mode: 'cluster', seeds: cluster.seeds }, preferReplica: true });
      await src.start();
      await until(() => snapshotEnds(ops) === 3, 'three snapshots');
      assert.equal(keyNames(ops).length, KEYS);
      assert.equal(new Set(keyNames(ops)).size, KEYS, 'every key once');
      const shards = src.progress.shards;
      assert.equal(shards.length, 3);
      for (const p of shards) {
        const port = Number(p.node?.split(':')[1]);
        const node = replicas.find((r) => r.port === port);
        assert.ok(node, `shard ${p.shard} links to ${p.node}, which is not a replica`);
        const firstSlot = Number(/^slots:(\d+)/.exec(p.shard)?.[1]);
        const role = (await node.command('ROLE')) as unknown[];
        assert.equal(Number(role[2]), (await slotOwner(firstSlot)).port, `${p.node} replicates the master of ${p.shard}`);
      }
      for (const r of replicas) assert.equal((await replicaClients(r)).length, 1, `replica ${r.port} serves our link`);
      for (const m of masters) assert.equal((await replicaClients(m)).length, 1, `master ${m.port} serves its own replica only`);

      const c = cluster.client();
      for (let i = 0; i < 90; i++) await c.incr(`count:${i}`);
      await until(() => commandsNamed(ops, 'INCR').length >= 90, '90 INCRs');
      await sleep(300);
      assert.deepEqual(commandsNamed(ops, 'INCR').map((o) => o.args[0].toString()).sort(), Array.from({ length: 90 }, (_, i) => `count:${i}`).sort());
    });

    it("with shards '1,3', replicates exactly the keys of the first and third shards", async () => {
      const ops: Operation[] = [];
      const src = source(ops, { endpoint: { mode: 'cluster', seeds: cluster.seeds }, shards: '1,3' });
      await src.start();
      await until(() => snapshotEnds(ops) === 2, 'two snapshots');
      await sleep(300); // a third shard would have started by now
      const first = await slotOwner(0);
      const third = await slotOwner(16383);
      const second = await slotOwner(8192);
      assert.deepEqual(new Set(src.progress.shards.map((p) => p.shard)), new Set(['slots:0-5460', 'slots:10923-16383']));
      assert.deepEqual(new Set(ops.map((o) => o.shard)), new Set(['slots:0-5460', 'slots:10923-16383']));
      const expected = [...(await keysOf(first)), ...(await keysOf(third))].sort();
      assert.ok((await keysOf(second)).length > 50, 'the second shard holds keys that must not come');
      assert.deepEqual(keyNames(ops), expected);
      assert.equal((await replicaClients(second)).length, 1, 'no link to the second shard');

      const c = cluster.client();
      const written = Array.from({ length: 90 }, (_, i) => `sel:${i}`);
      for (const k of written) await c.incr(k);
      const wanted = written.filter((k) => calculateSlot(k) <= 5460 || calculateSlot(k) >= 10923).sort();
      assert.ok(wanted.length > 0 && wanted.length < written.length);
      await until(() => commandsNamed(ops, 'INCR').length >= wanted.length, `${wanted.length} INCRs`);
      await sleep(300);
      assert.deepEqual(commandsNamed(ops, 'INCR').map((o) => o.args[0].toString()).sort(), wanted);
    });

    it('rejects start() quoting a selector that matches no shard, or names one that does not exist, and leaves nothing running', async () => {
      const connections = async (): Promise<number> => {
        let total = 0;
        for (const n of cluster.nodes) total += Number(/total_connections_received:(\d+)/.exec(String(await n.command('INFO', 'stats')))?.[1]);
        return total;
      };
      for (const shards of ['1-100', '4', 'no-such-node:1']) {
        const src = source([], { endpoint: { mode: 'cluster', seeds: cluster.seeds }, shards, topologyIntervalMs: 100 });
        await assert.rejects(src.start(), (e: unknown) => {
          assert.ok(e instanceof ReplicationError);
          assert.equal(e.code, 'LOCAL', `a configuration error, not an unreachable source: ${e.message}`);
          assert.equal(e.retryable, false);
          assert.ok(e.message.includes(`"${shards}"`), e.message);
          return true;
        });
        assert.equal(src.progress.shards.length, 0);
        // No discovery goes on in the background: only the probes of connections() connect.
        const before = await connections();
        await sleep(500);
        assert.equal(await connections(), before + cluster.nodes.length, `no connection after the rejection of "${shards}"`);
      }
    });
  });

  describe('REPLCONF GETACK', () => {
    let server: RedisServer;
    before(async () => {
      // Disk-based: the master streams as soon as the RDB is sent. After a diskless transfer it
      // would wait for an ACK that comes after it registered the end, i.e. a periodic one.
      server = await startRedis({ config: { 'repl-diskless-sync': 'no' } });
    });
    after(() => server?.stop());

    it('WAIT 1 on the source returns 1 promptly: the link answers GETACK at once', async () => {
      const decoder = new ReplicationDecoder({ shard: 'wait' });
      const ops: Operation[] = [];
      // Periodic ACKs far apart: only the answer to GETACK can release a WAIT in time.
      const link = new ReplicaLink({
        host: HOST,
        port: server.port,
        position: null,
        ackIntervalMs: 60_000,
        onRecord: (r) => {
          for (const op of decoder.push(r)) ops.push(op);
        },
      });
      running.push({ stop: () => link.close() });
      await link.start();
      await until(() => link.state === 'streaming', 'the stream');
      const c = server.client();
      for (let i = 0; i < 5; i++) {
        await c.set(`w:${i}`, 'x');
        const t0 = Date.now();
        const acked = await c.call('WAIT', '1', '2000');
        const ms = Date.now() - t0;
        assert.equal(acked, 1, `WAIT ${i} counted our link`);
        assert.ok(ms < 500, `WAIT ${i} took ${ms} ms`);
      }
      const info = String(await c.info('replication'));
      const masterOffset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1]);
      const acked = Number(/slave0:.*offset=(\d+)/.exec(info)?.[1]);
      // The ACK is the offset before the last GETACK, which followed the last SET.
      assert.ok(acked > 0 && acked <= masterOffset, `acked ${acked} of ${masterOffset}`);
      assert.equal(commandsNamed(ops, 'SET').length, 5);
      assert.ok(commandsNamed(ops, 'SET').every((o) => o.offset <= acked));
    });
  });

  describe('a replica node without its master link', () => {
    let master: RedisServer;
    let replica: RedisServer;
    before(async () => {
      master = await startRedis();
      for (let i = 0; i < 50; i++) await master.command('SET', `m:${i}`, `v${i}`);
      // Stopped (SIGSTOP): same port, same data once it continues. The replica's connection
      // gets through to the kernel but its handshake is never answered.
      master.kill('SIGSTOP');
      replica = await startRedis({ config: { replicaof: `${HOST} ${master.port}` } });
    });
    after(async () => {
      master?.kill('SIGCONT');
      await Promise.all([replica?.stop(), master?.stop()]);
    });

    it('is retried on NOMASTERLINK without ending, and synced in full once its master is back', async () => {
      const ops: Operation[] = [];
      const retries: Array<{ err: ReplicationError; afterResume: boolean }> = [];
      const ends: unknown[] = [];
      let resumed = false;
      const session = new ReplicaSession({
        shard: 'standalone',
        locate: async () => ({ host: HOST, port: replica.port }),
        spoolDir: path.join(dir, 'spool'),
        positions: new FilePositionStore(path.join(dir, 'positions.json')),
        backoffInitialMs: 100,
        backoffMaxMs: 200,
        onBatch: async (batch) => {
          ops.push(...batch);
        },
      });
      running.push(session);
      session.on('retry', (err: ReplicationError) => retries.push({ err, afterResume: resumed }));
      session.on('end', (err) => ends.push(err));
      await session.start();
      await until(() => retries.length >= 4, 'four retries');
      await sleep(300);
      assert.deepEqual(ends, [], 'no end while the replica has no master link');
      assert.equal(session.phase, 'reconnecting');
      assert.deepEqual(ops, []);
      for (const { err } of retries) {
        assert.equal(err.code, 'NOMASTERLINK');
        assert.equal(err.retryable, true);
        assert.equal(err.message, `${HOST}:${replica.port}: this node is a replica whose link to its own master is down (PSYNC: NOMASTERLINK Can't SYNC while not connected with my master): check that master, or point the endpoint at a node that serves the data`);
      }

      resumed = true;
      master.kill('SIGCONT');
      await until(() => snapshotEnds(ops) === 1, 'the full sync through the replica');
      assert.deepEqual(keyNames(ops), Array.from({ length: 50 }, (_, i) => `m:${i}`).sort());
      // While the replica loads what its master sent, it may answer LOADING: retried too.
      assert.ok(retries.filter((r) => r.afterResume).every((r) => ['NOMASTERLINK', 'LOADING'].includes(r.err.code)));
      for (let i = 0; i < 30; i++) await master.command('INCR', 'm:n');
      await until(() => commandsNamed(ops, 'INCR').length >= 30, '30 INCRs');
      await sleep(300);
      assert.equal(commandsNamed(ops, 'INCR').length, 30);
      assert.deepEqual(ends, []);
      assert.equal(session.phase, 'streaming');
    });
  });

  describe('idle timeout against a fault-injecting fake master', () => {
    /**
     * A fault-injecting fake master: a plain net server that answers the handshake like Redis
     * (+PONG, +OK, INFO refused as where it is renamed) and PSYNC with +FULLRESYNC, then, as `stallAt` says, falls silent after
     * the handshake, after +FULLRESYNC, or after the RDB header and 9 of 100 announced bytes.
     */
    async function fakeMaster(stallAt: 'handshake' | 'fullresync' | 'rdb'): Promise<net.Server> {
      const server = net.createServer((socket) => {
        const parser = new RespParser();
        socket.on('error', () => undefined);
        socket.on('data', (chunk) => {
          parser.push(chunk);
          for (let v = parser.next(); v !== undefined; v = parser.next()) {
            const name = String((v as Buffer[])[0]).toUpperCase();
            if (stallAt === 'handshake') continue;
            if (name === 'PING') socket.write('+PONG\r\n');
            else if (name === 'INFO') socket.write("-ERR unknown command 'INFO'\r\n");
            else if (name === 'REPLCONF') socket.write('+OK\r\n');
            else if (name === 'PSYNC') {
              socket.write(`+FULLRESYNC ${'a'.repeat(40)} 0\r\n`);
              if (stallAt === 'rdb') socket.write('$100\r\nREDIS0010');
            }
          }
        });
      });
      server.listen(0, HOST);
      await once(server, 'listening');
      running.push({ stop: () => new Promise((r) => server.close(r)) });
      return server;
    }

    const cases = [
      { stallAt: 'handshake', where: 'during the handshake phase', handshakeDone: false },
      { stallAt: 'fullresync', where: 'during the waiting-rdb phase', handshakeDone: true },
      { stallAt: 'rdb', where: 'during the RDB transfer, after 9 of 100 bytes', handshakeDone: true },
    ] as const;
    for (const { stallAt, where, handshakeDone } of cases) {
      it(`ends with a retryable TIMEOUT naming the phase when the master falls silent ${where}`, async () => {
        const fake = await fakeMaster(stallAt);
        const { port } = fake.address() as net.AddressInfo;
        const link = new ReplicaLink({ host: HOST, port, position: null, idleTimeoutMs: 1500, ackIntervalMs: 100, onRecord: () => {} });
        running.push({ stop: () => link.close() });
        const closed = new Promise<ReplicationError | null>((r) => link.once('close', r));
        const t0 = Date.now();
        const started = link.start().then(
          () => 'started',
          (e: ReplicationError) => e,
        );
        const err = await closed;
        const ms = Date.now() - t0;
        assert.ok(err instanceof ReplicationError);
        assert.equal(err.code, 'TIMEOUT');
        assert.equal(err.retryable, true);
        assert.equal(err.message, `${HOST}:${port}: no data from the master for 1500 ms (${where})`);
        assert.ok(ms >= 1500 && ms < 2500, `after ${ms} ms`);
        assert.equal(await started, handshakeDone ? 'started' : err, 'start() rejects only when the handshake did not complete');
      });
    }
  });
});
