/**
 * The precheck engine against real servers made to fail each check, a clean pair that
 * passes, and the pure parts (version and module rules, ACL rule evaluation) on their own.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { EndpointConfig } from '../lib/endpoint';
import {
  aclAllows,
  functionFindings,
  moduleFindings,
  PrecheckContext,
  runCheck,
  runPrecheck,
  versionFindings,
  type Finding,
  type PrecheckOptions,
  type PrecheckReport,
} from '../lib/precheck';
import { rdbVersionOfServer } from '../lib/rdb';
import { HOST, startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { freePort } from './support/net';
import { makeTestCertificates, type TestCertificates } from './support/tls';
import { redisBuild, requireBuilds } from './support/versions';

const endpoint = (port: number, extra: Partial<EndpointConfig> = {}): EndpointConfig =>
  ({ mode: 'standalone', host: HOST, port, connectTimeoutMs: 2000, ...extra }) as EndpointConfig;

/** A short write-rate sample keeps each run near half a second. */
function run(source: EndpointConfig, destination: EndpointConfig, options: PrecheckOptions = {}): Promise<PrecheckReport> {
  return runPrecheck({ source, destination, options: { writeRateSampleMs: 300, ...options } });
}

const byId = (r: PrecheckReport, id: string): Finding[] => r.findings.filter((f) => f.id === id);
const errorIds = (r: PrecheckReport): string[] => r.errors.map((f) => f.id);
const show = (r: PrecheckReport): string => r.findings.map((f) => `${f.severity} ${f.id}: ${f.message}`).join('\n');

function only(r: PrecheckReport, id: string, severity: Finding['severity']): Finding {
  const found = byId(r, id).filter((f) => f.severity === severity);
  assert.equal(found.length, 1, `one ${severity} ${id}, in:\n${show(r)}`);
  return found[0];
}

const USERS = [
  // everything but replication; may run ACL DRYRUN
  'norepl on >pw ~* &* +@all -psync -sync',
  // may read its own rules but not dry-run
  'rules on >pw ~* &* +@all -acl|dryrun -psync',
  // what a replica needs and nothing else
  'replica on >pw +psync +replconf +ping',
  // no admin commands at all: neither ACL DRYRUN / GETUSER nor REPLCONF
  'noadmin on >pw ~* &* +@all -@admin',
];

describe('precheck against real servers', function () {
  this.timeout(60_000);
  let source: RedisServer;
  let destination: RedisServer;

  before(async () => {
    [source, destination] = await Promise.all([startRedis({ config: { user: USERS } }), startRedis()]);
  });
  after(async () => {
    await Promise.all([source?.stop(), destination?.stop()]);
  });
  beforeEach(async () => {
    await Promise.all([source.command('FLUSHALL'), destination.command('FLUSHALL')]);
  });

  it('passes a clean pair, with an info finding from every check', async () => {
    for (let i = 0; i < 50; i++) await source.command('SET', `k${i}`, 'v'.repeat(i * 10));
    const r = await run(endpoint(source.port), endpoint(destination.port), { requireEmptyDestination: true });
    assert.equal(r.passed, true, show(r));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, [], show(r));
    for (const id of ['architecture', 'source-role', 'versions', 'rdb-version', 'replication-permission', 'keyspace-notifications', 'destination-empty', 'eviction-policy', 'memory', 'modules', 'functions', 'databases', 'repl-backlog', 'output-buffer', 'proto-max-bulk-len']) {
      assert.ok(byId(r, id).length > 0, `a ${id} finding in:\n${show(r)}`);
    }
    assert.match(only(r, 'replication-permission', 'info').message, /user default may run PING, REPLCONF and PSYNC on 127\.0\.0\.1:\d+ \(checked with ACL DRYRUN\)/);
    assert.match(only(r, 'versions', 'info').message, /source redis_version 7\.0\.\d+, destination 7\.0\.\d+/);
    // maxmemory 0: bounded by the machine, and said so
    assert.match(only(r, 'memory', 'info').message, /maxmemory 0 \(no limit\), so the machine's total_system_memory .* is the bound/);
    assert.match(only(r, 'proto-max-bulk-len', 'info').message, /largest of 50 sampled source keys is "k4\d"/);
    assert.ok(r.durationMs < 10_000);
  });

  it('warns that the source\'s function libraries cannot go into a destination before 7.0, naming them', async function () {
    const build = redisBuild('6.2.16');
    requireBuilds(this, ['6.2.16']);
    if (typeof build === 'string') throw new Error(build);
    const old = await startRedis({ binary: build.server, cliBinary: build.cli });
    try {
      for (const name of ['lib_a', 'lib_b']) await source.command('FUNCTION', 'LOAD', `#!lua name=${name}\nredis.register_function('${name}_f', function() return 1 end)`);
      const r = await run(endpoint(source.port), endpoint(old.port));
      assert.equal(r.passed, true, show(r));
      const f = only(r, 'functions', 'warning');
      assert.equal(f.node, `${HOST}:${old.port}`);
      assert.match(f.message, /^2 function libraries on the source \("lib_a", "lib_b"\) cannot be copied to Redis 6\.2\.16 \(127\.0\.0\.1:\d+\): FCALL will fail there after cutover/);
      await source.command('FUNCTION', 'FLUSH');
      assert.equal(only(await run(endpoint(source.port), endpoint(old.port)), 'functions', 'info').message, 'the source has no function libraries (FUNCTION LIST)');
    } finally {
      await source.command('FUNCTION', 'FLUSH');
      await old.stop();
    }
  });

  it('fails a destination whose maxmemory-policy is not noeviction', async () => {
    await destination.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const r = await run(endpoint(source.port), endpoint(destination.port));
      assert.equal(r.passed, false);
      assert.deepEqual(errorIds(r), ['eviction-policy']);
      const f = r.errors[0];
      assert.equal(f.node, `${HOST}:${destination.port}`);
      assert.match(f.message, /maxmemory-policy is allkeys-lru/);
      assert.match(f.remedy, /CONFIG SET maxmemory-policy noeviction/);
    } finally {
      await destination.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('with "precheck and intercept", fails a destination holding keys, naming dbs and counts, ignoring checkpoint keys', async () => {
    await destination.command('HSET', 'redis-sync:ckpt', 'x', '1');
    await destination.command('HSET', 'redis-sync:ckpt:global', 'x', '1');
    const own = await run(endpoint(source.port), endpoint(destination.port), { requireEmptyDestination: true });
    assert.equal(own.passed, true, show(own));
    assert.match(only(own, 'destination-empty', 'info').message, /no keys in any db \(2 redis-sync:\* checkpoint keys of an earlier run ignored\)/);

    await destination.command('SET', 'user:1', 'x');
    await destination.command('SELECT', '0');
    const conn = destination.client({ db: 3 });
    await conn.set('a', '1');
    await conn.set('b', '1');
    conn.disconnect();
    const r = await run(endpoint(source.port), endpoint(destination.port), { requireEmptyDestination: true });
    assert.deepEqual(errorIds(r), ['destination-empty']);
    assert.match(r.errors[0].message, /not empty \(db0: 1 key, db3: 2 keys, not counting redis-sync:\* checkpoint keys\)/);

    const elsewhere = await run(endpoint(source.port), endpoint(destination.port), { requireEmptyDestination: true, databases: [5] });
    assert.equal(elsewhere.passed, true, show(elsewhere));
    assert.match(only(elsewhere, 'destination-empty', 'info').message, /no keys in db 5/);

    const ignore = await run(endpoint(source.port), endpoint(destination.port));
    assert.equal(ignore.passed, true);
    assert.deepEqual(byId(ignore, 'destination-empty'), [], 'not checked without the policy');
  });

  describe('a source user without replication rights', () => {
    const as = (username: string): EndpointConfig => endpoint(source.port, { username, password: 'pw' });

    it('is refused, by ACL DRYRUN when the user may run it', async () => {
      const r = await run(as('norepl'), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['replication-permission']);
      assert.match(r.errors[0].message, /user norepl may not run PSYNC: .*'psync'.* \(checked with ACL DRYRUN\)/);
      assert.match(r.errors[0].remedy, /ACL SETUSER norepl \+psync \+replconf \+ping/);
    });

    it('is refused, by its ACL GETUSER rules when it may not dry-run', async () => {
      const r = await run(as('rules'), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['replication-permission']);
      assert.match(r.errors[0].message, /user rules may not run PSYNC: its rules are ".*-psync.*" \(checked with ACL GETUSER rules with COMMAND INFO categories\)/);
    });

    it('is refused, by a REPLCONF of its own when it may read no ACL', async () => {
      const r = await run(as('noadmin'), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['replication-permission']);
      assert.match(r.errors[0].message, /user noadmin may not run REPLCONF: NOPERM .* \(checked with REPLCONF listening-port 0 on a connection of its own\)/);
    });

    it('a replica-only user passes REPLCONF, PSYNC stays unverified, and what it may not read is skipped', async () => {
      const r = await run(as('replica'), endpoint(destination.port));
      assert.equal(r.passed, true, show(r));
      assert.match(only(r, 'replication-permission', 'warning').message, /REPLCONF is allowed.*whether user replica may run PSYNC cannot be tested without starting a full sync/);
      assert.match(only(r, 'architecture', 'warning').message, /may not run INFO/);
      assert.ok(byId(r, 'skipped').some((f) => f.severity === 'warning' && /INFO is not available/.test(f.message)), show(r));
    });

    it('a user allowed to replicate passes', async () => {
      const r = await run(endpoint(source.port), endpoint(destination.port));
      assert.equal(only(r, 'replication-permission', 'info').severity, 'info');
    });
  });

  it('reports PSYNC and SYNC renamed away (as managed services do)', async () => {
    const managed = await startRedis({ config: { 'rename-command': ['PSYNC ""', 'SYNC ""'] } });
    try {
      const r = await run(endpoint(managed.port), endpoint(destination.port));
      assert.ok(errorIds(r).includes('replication-commands'), show(r));
      assert.match(only(r, 'replication-commands', 'error').message, /PSYNC and SYNC are unknown to this server \(COMMAND INFO\)/);
    } finally {
      await managed.stop();
    }
  });

  it('warns a source tuned as a managed service (SYNC, PSYNC, CONFIG renamed) that keyspace notifications cannot be read, saying what to set in the provider\'s console', async () => {
    const managed = await startRedis({ config: { 'rename-command': ['PSYNC ""', 'SYNC ""', 'CONFIG ""'] } });
    try {
      const r = await run(endpoint(managed.port), endpoint(destination.port));
      const f = only(r, 'keyspace-notifications', 'warning');
      assert.match(f.message, /notify-keyspace-events cannot be read \(CONFIG GET refused: .*unknown command.*only the scan source .* needs "KA"/);
      assert.match(f.remedy, /set notify-keyspace-events to "KA" on every master.*ElastiCache: the parameter group/);
    } finally {
      await managed.stop();
    }
  });

  it('keyspace notifications: an info naming what lacks where the replica source can attach, and none once KA is set', async () => {
    const stock = await run(endpoint(source.port), endpoint(destination.port));
    assert.match(only(stock, 'keyspace-notifications', 'info').message, /notify-keyspace-events is "", without K g \$ l s h z x e t; the scan source .* needs them/);
    await source.command('CONFIG', 'SET', 'notify-keyspace-events', 'KA');
    try {
      const set = await run(endpoint(source.port), endpoint(destination.port));
      assert.match(only(set, 'keyspace-notifications', 'info').message, /keyspace notifications as the scan source needs them on 127\.0\.0\.1:\d+ \("AK"\)/);
    } finally {
      await source.command('CONFIG', 'SET', 'notify-keyspace-events', '');
    }
  });

  it('fails a destination with less room than the source uses, with the numbers', async () => {
    const value = Buffer.alloc(100 * 1024, 'x');
    for (let i = 0; i < 80; i++) await source.command('SET', `big${i}`, value);
    await destination.command('CONFIG', 'SET', 'maxmemory', String(4 * 1024 * 1024));
    try {
      const r = await run(endpoint(source.port), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['memory']);
      assert.match(r.errors[0].message, /^not enough room on the destination: the source uses [\d.]+ MiB \(used_memory\), with a 10% margin [\d.]+ MiB; the destination can take [\d.]+ MiB more: 127\.0\.0\.1:\d+ maxmemory 4\.0 MiB − used/);
    } finally {
      await destination.command('CONFIG', 'SET', 'maxmemory', '0');
    }
  });

  it('reports an unreachable destination, and skips what needs it in one finding', async () => {
    const port = await freePort();
    const r = await run(endpoint(source.port), endpoint(port));
    assert.deepEqual(errorIds(r), ['connection']);
    assert.equal(r.errors[0].side, 'destination');
    assert.match(r.errors[0].message, new RegExp(`^destination ${HOST}:${port}: connect ECONNREFUSED`));
    const skipped = only(r, 'skipped', 'info');
    assert.match(skipped.message, /^not checked: versions, eviction policy, cluster slots, memory, modules, functions, databases, proto-max-bulk-len \(the destination could not be reached/);
    assert.ok(byId(r, 'repl-backlog').length > 0, 'source-only checks still run');
  });

  it('reports a wrong password and a missing one, with the server\'s reply', async () => {
    const locked = await startRedis({ config: { requirepass: 'secret' } });
    try {
      const wrong = await run(endpoint(source.port), endpoint(locked.port, { password: 'nope' }));
      assert.deepEqual(errorIds(wrong), ['auth']);
      assert.match(wrong.errors[0].message, /^destination 127\.0\.0\.1:\d+: authentication as \(default user\) failed: WRONGPASS/);
      const missing = await run(endpoint(locked.port), endpoint(destination.port));
      assert.deepEqual(errorIds(missing), ['auth']);
      assert.match(missing.errors[0].message, /^source .*requires a password and none is configured: NOAUTH/);
      const user = await run(endpoint(source.port, { username: 'norepl', password: 'wrong' }), endpoint(destination.port));
      assert.match(only(user, 'auth', 'error').message, /authentication as norepl failed: WRONGPASS/);
    } finally {
      await locked.stop();
    }
  });

  it('fails a source that is a replica whose link to its master is down', async () => {
    const deadMaster = await freePort();
    const replica = await startRedis({ config: { replicaof: `${HOST} ${deadMaster}` } });
    try {
      const r = await run(endpoint(replica.port), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['source-role']);
      assert.match(r.errors[0].message, new RegExp(`replica whose link to its master ${HOST}:${deadMaster} is down`));
    } finally {
      await replica.stop();
    }
  });

  it('warns when the backlog covers little of the write rate, and when the replica output buffer would overflow in a full sync', async () => {
    await source.command('CONFIG', 'SET', 'repl-backlog-size', '16384');
    await source.command('CONFIG', 'SET', 'client-output-buffer-limit', 'replica 65536 32768 1');
    const writer = source.client();
    let writing = true;
    const load = (async () => {
      const value = 'x'.repeat(1024);
      while (writing) await Promise.all(Array.from({ length: 50 }, (_, i) => writer.set(`w${i}`, value)));
    })();
    try {
      const r = await run(endpoint(source.port), endpoint(destination.port), { writeRateSampleMs: 500 });
      assert.equal(r.passed, true, 'warnings only');
      const backlog = only(r, 'repl-backlog', 'warning');
      assert.match(backlog.message, /repl-backlog-size 16\.0 KiB at [\d.]+ [KM]iB\/s of writes .* covers a disconnect of [\d.]+ s/);
      assert.match(backlog.remedy, /CONFIG SET repl-backlog-size \d+/);
      assert.match(only(r, 'output-buffer', 'warning').message, /hard 64\.0 KiB, soft 32\.0 KiB for 1 s; .* above the hard limit/);
    } finally {
      writing = false;
      await load;
      writer.disconnect();
      await source.command('CONFIG', 'SET', 'repl-backlog-size', String(1024 * 1024));
      await source.command('CONFIG', 'SET', 'client-output-buffer-limit', 'replica 268435456 67108864 60');
    }
  });

  it('warns when a sampled source key is bigger than the destination\'s proto-max-bulk-len', async () => {
    await source.command('SET', 'huge', Buffer.alloc(2 * 1024 * 1024, 'y'));
    await destination.command('CONFIG', 'SET', 'proto-max-bulk-len', String(1024 * 1024));
    try {
      const r = await run(endpoint(source.port), endpoint(destination.port));
      assert.equal(r.passed, true);
      assert.match(only(r, 'proto-max-bulk-len', 'warning').message, /largest of 1 sampled source keys is "huge" on .*, [\d.]+ MiB \(MEMORY USAGE\), above the destination proto-max-bulk-len 1\.0 MiB/);
    } finally {
      await destination.command('CONFIG', 'SET', 'proto-max-bulk-len', String(512 * 1024 * 1024));
    }
  });

  it('reports a read/write-splitting proxy by what it shows: INFO without a role', async () => {
    const proxy = await fakeProxy();
    try {
      const r = await run(endpoint(proxy.port), endpoint(destination.port));
      assert.ok(errorIds(r).includes('architecture'), show(r));
      assert.match(only(r, 'architecture', 'error').message, /INFO reports no replication role \(sections: server\): a proxy/);
    } finally {
      proxy.close();
    }
  });

  it('reports a port that does not speak Redis', async () => {
    const http = net.createServer((sock) => sock.once('data', () => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    http.listen(0, HOST);
    await once(http, 'listening');
    try {
      const r = await run(endpoint(source.port), endpoint((http.address() as net.AddressInfo).port));
      assert.deepEqual(errorIds(r), ['protocol']);
      assert.match(r.errors[0].message, /^destination 127\.0\.0\.1:\d+: answered something that is not Redis \(RESP\): "HTTP\/1\.1 400/);
    } finally {
      http.close();
    }
  });

  describe('clusters', () => {
    let holes: RedisCluster;
    let full: RedisCluster;
    before(async () => {
      [holes, full] = await Promise.all([
        startCluster({ slots: [[[0, 8000]], [[8002, 16000]]], replicas: 0, config: { user: USERS } }),
        startCluster({ masters: 3, replicas: 0 }),
      ]);
    });
    after(async () => {
      await Promise.all([holes?.stop(), full?.stop()]);
    });
    const cluster = (c: RedisCluster, extra: Partial<EndpointConfig> = {}): EndpointConfig =>
      ({ mode: 'cluster', seeds: [c.seeds[0]], connectTimeoutMs: 2000, ...extra }) as EndpointConfig;

    it('fails a destination cluster with unassigned slots, naming the ranges', async () => {
      const r = await run(endpoint(source.port), cluster(holes));
      assert.deepEqual(errorIds(r), ['cluster-slots'], show(r));
      assert.match(r.errors[0].message, /serves 16000 of 16384 slots: 384 unassigned \(8001,16001-16383\)/);
      const ok = await run(endpoint(source.port), cluster(full));
      assert.match(only(ok, 'cluster-slots', 'info').message, /all 16384 slots of the destination cluster are served by 3 reachable masters/);
    });

    it('checks the replication rights on every master of a source cluster', async () => {
      const r = await run(cluster(holes, { username: 'norepl', password: 'pw' }), endpoint(destination.port));
      const denied = byId(r, 'replication-permission').filter((f) => f.severity === 'error');
      assert.deepEqual(denied.map((f) => f.node).sort(), holes.nodes.map((n) => `${HOST}:${n.port}`).sort());
      const ok = await run(cluster(full), endpoint(destination.port));
      assert.match(only(ok, 'replication-permission', 'info').message, /on 3 masters \(.*\) \(checked with ACL DRYRUN\)/);
    });

    it('says which dbs and db commands of the source a cluster cannot carry out, and that a server with every db runs them', async () => {
      const own = await startRedis();
      try {
        await own.command('SET', 'k', 'v');
        await own.command('MOVE', 'k', '3');
        await own.command('SWAPDB', '0', '1');
        await own.command('SWAPDB', '0', '1');
        const r = await run(endpoint(own.port), cluster(full));
        assert.equal(r.passed, true, 'nothing stops the sync: the sink drops and counts what the destination has no db for');
        const [keys, swapdb, move] = byId(r, 'databases');
        assert.deepEqual([keys.severity, swapdb.severity, move.severity], ['warning', 'warning', 'warning'], show(r));
        assert.match(keys.message, /holds keys in db 3 \(1 key\), which the destination does not have \(a cluster has db 0 only\): unless a redis-op-filter maps/);
        assert.match(keys.remedy, /every db to db 0" and a key prefix per db/);
        assert.match(swapdb.message, /^the source ran SWAPDB 2 times \(INFO commandstats.*\): a cluster cannot carry it out, with an op filter or without/);
        assert.match(move.message, /^the source ran MOVE 1 time .* carried out only between dbs a redis-op-filter puts into db 0 with a key prefix per db/);
        assert.match(only(await run(endpoint(own.port), endpoint(destination.port)), 'databases', 'info').message, /^the source ran MOVE, SWAPDB and COPY 1 time, 2 times and 0 times .*: the destination runs them as they come/);
        const two = await startRedis({ config: { databases: '2' } });
        try {
          const f = only(await run(endpoint(own.port), endpoint(two.port)), 'databases', 'warning');
          assert.match(f.message, /holds keys in db 3 \(1 key\), which the destination does not have \(the destination has 2 dbs \(databases\)\)/);
          assert.match(f.remedy, /raise databases on the destination to 4 or more/);
        } finally {
          await two.stop();
        }
        const ok = await run(cluster(full), endpoint(destination.port));
        assert.match(only(ok, 'databases', 'info').message, /the source is a cluster: it has db 0 only/);
      } finally {
        await own.stop();
      }
    });

    it('fails a cluster node configured as a standalone source', async () => {
      const r = await run(endpoint(full.nodes[0].port), endpoint(destination.port));
      assert.match(only(r, 'architecture', 'error').message, /configured as a standalone server but is a cluster node/);
    });

    it('warns per destination master whose share of the source does not fit', async () => {
      const value = Buffer.alloc(100 * 1024, 'x');
      for (let i = 0; i < 60; i++) await source.command('SET', `big${i}`, value);
      const [small] = await full.masters();
      await small.command('CONFIG', 'SET', 'maxmemory', String(3 * 1024 * 1024));
      try {
        const r = await run(endpoint(source.port), cluster(full));
        const f = only(r, 'memory-per-master', 'warning');
        assert.equal(f.node, `${HOST}:${small.port}`);
        assert.match(f.message, /can take [\d.]+ [KM]iB more \(maxmemory 3\.0 MiB\), but the source's slot layout differs; spreading its memory evenly over its slots, these slots hold about [\d.]+ MiB/);
      } finally {
        await small.command('CONFIG', 'SET', 'maxmemory', '0');
      }
    });
  });

  describe('TLS', () => {
    let certs: TestCertificates;
    let ca: string;
    let tlsOnly: RedisServer;
    let tlsOnlyPort: number;

    before(async () => {
      certs = await makeTestCertificates();
      ca = certs.pem.ca;
      tlsOnlyPort = await freePort();
      tlsOnly = await startRedis({ config: certs.serverConfig(tlsOnlyPort, 'no'), stopTimeoutMs: 300 });
      // TLS only from now on (the harness needed the plain port to start it).
      assert.equal(await tlsOnly.command('CONFIG', 'SET', 'port', '0'), 'OK');
    });
    after(async () => {
      await tlsOnly?.stop();
      certs?.remove();
    });

    const tls = (port: number, extra: Partial<NonNullable<EndpointConfig['tls']>> = {}): EndpointConfig =>
      endpoint(port, { connectTimeoutMs: 1500, tls: { enabled: true, ca, servername: 'redis.test', ...extra } });

    it('passes when both sides agree on TLS', async () => {
      const r = await run(tls(tlsOnlyPort), endpoint(destination.port));
      assert.equal(r.passed, true, show(r));
    });

    it('fails a plain connection to a TLS-only source', async () => {
      const r = await run(endpoint(tlsOnlyPort), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['tls'], show(r));
      assert.match(r.errors[0].message, /^source 127\.0\.0\.1:\d+: (.* before answering anything, as a TLS-only port does to a plain connection|answered with TLS bytes)/);
      assert.match(r.errors[0].remedy, /turn TLS on/);
    });

    it('fails TLS against a plain port, within the connect timeout', async () => {
      const t0 = Date.now();
      const r = await run(endpoint(source.port), tls(destination.port));
      assert.deepEqual(errorIds(r), ['tls']);
      assert.match(r.errors[0].message, /^destination 127\.0\.0\.1:\d+: (no TLS handshake after 1500 ms \(a plain-TCP port waits silently|TLS handshake failed)/);
      assert.match(r.errors[0].remedy, /turn TLS off/);
      assert.ok(Date.now() - t0 < 5000);
    });

    it('fails a server certificate that the configured CA did not sign', async () => {
      const r = await run(tls(tlsOnlyPort, { ca: undefined }), endpoint(destination.port));
      assert.deepEqual(errorIds(r), ['tls']);
      assert.match(r.errors[0].message, /TLS certificate was rejected/);
      assert.match(r.errors[0].remedy, /CA that signed the server certificate/);
    });
  });
});

/** Answers like a proxy that hides the servers behind it: PING and a bare INFO, nothing else. */
async function fakeProxy(): Promise<{ port: number; close: () => void }> {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let m;
      while ((m = /^\*(\d+)\r\n((?:\$\d+\r\n[^\r]*\r\n)+)/.exec(buf))) {
        buf = buf.slice(m[0].length);
        const cmd = /\$\d+\r\n([^\r]*)/.exec(m[2])?.[1].toUpperCase();
        if (cmd === 'PING') sock.write('+PONG\r\n');
        else if (cmd === 'INFO') {
          const body = '# Server\r\nredis_version:6.2.0\r\n';
          sock.write(`$${body.length}\r\n${body}\r\n`);
        } else sock.write(`-ERR unknown command '${cmd}'\r\n`);
      }
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

describe('precheck rules', () => {
  it('maps server versions to the RDB versions they read', () => {
    const table: Array<[[number, number, number], number]> = [
      [[8, 0, 0], 12], [[7, 4, 1], 12], [[7, 2, 4], 11], [[7, 0, 15], 10], [[6, 2, 14], 9], [[5, 0, 0], 9], [[4, 0, 14], 8], [[3, 2, 0], 7], [[2, 8, 24], 6],
    ];
    for (const [version, rdb] of table) assert.equal(rdbVersionOfServer(version), rdb, version.join('.'));
  });

  it('a newer source than destination: a version warning, and RDB payloads the destination cannot read', () => {
    const src = [{ address: 's:1', version: [7, 4, 0] as [number, number, number] }];
    const dst = [{ address: 'd:1', version: [7, 0, 15] as [number, number, number] }, { address: 'd:2', version: [7, 2, 0] as [number, number, number] }];
    const typed = versionFindings(src, dst, true);
    const v = typed.find((f) => f.id === 'versions');
    assert.equal(v?.severity, 'warning');
    assert.match(String(v?.message), /source redis_version 7\.4\.0, destination 7\.0\.15 to 7\.2\.0: the destination \(d:1, 7\.0\.15\) is older than the source/);
    const rdb = typed.find((f) => f.id === 'rdb-version');
    assert.equal(rdb?.severity, 'warning');
    assert.match(String(rdb?.message), /writes RDB version 12, the destination d:1 \(Redis 7\.0\.15\) reads RDB up to 10.*typed commands/);
    assert.equal(versionFindings(src, dst, false).find((f) => f.id === 'rdb-version')?.severity, 'error');
    const same = versionFindings(src, [{ address: 'd:1', version: [7, 4, 2] }], false);
    assert.deepEqual(same.map((f) => f.severity), ['info', 'info']);
    assert.equal(versionFindings([{ address: 's:1', version: [2, 6, 0] }], dst, true)[0].severity, 'error');
  });

  it('modules: missing on the destination is an error, older a warning', () => {
    const src = [{ address: 's:1', mods: new Map([['ReJSON', 20600], ['search', 20800]]) }];
    const findings = moduleFindings(src, [
      { address: 'd:1', mods: new Map([['ReJSON', 20600], ['search', 20800]]) },
      { address: 'd:2', mods: new Map([['ReJSON', 20400]]) },
    ]);
    assert.deepEqual(findings.map((f) => `${f.severity} ${f.node}`), ['error d:2', 'warning d:2']);
    assert.match(findings[0].message, /lacks module the source loads: search \(source version 20800\)/);
    assert.equal(moduleFindings([{ address: 's:1', mods: new Map() }], [])[0].message, 'the source loads no modules');
  });

  it('function libraries: a warning only where the source has some and a destination master is older than 7.0', () => {
    const v7 = [{ address: 's:1', version: [7, 2, 4] as [number, number, number] }];
    const mixed = [{ address: 'd:1', version: [7, 0, 15] as [number, number, number] }, { address: 'd:2', version: [6, 2, 16] as [number, number, number] }];
    const [warning] = functionFindings(['one'], v7, mixed);
    assert.deepEqual([warning.severity, warning.node], ['warning', 'd:2']);
    assert.match(warning.message, /^1 function library on the source \("one"\) cannot be copied to Redis 6\.2\.16 \(d:2\)/);
    assert.equal(functionFindings(null, v7, [mixed[0]])[0].severity, 'info');
    assert.equal(functionFindings([], [{ address: 's:1', version: [6, 2, 16] }], mixed)[0].message, 'the source has no function libraries (new in Redis 7.0)');
  });

  it('evaluates ACL command rules as Redis does, left to right', () => {
    const cats = ['@admin', '@slow', '@dangerous'];
    assert.equal(aclAllows('+@all -psync', 'PSYNC', '?', cats), false);
    assert.equal(aclAllows('-@all +psync', 'PSYNC', '?', cats), true);
    assert.equal(aclAllows('+@all -@admin', 'REPLCONF', 'listening-port', cats), false);
    assert.equal(aclAllows('-@all +@admin -psync +psync', 'PSYNC', '?', cats), true);
    assert.equal(aclAllows('-@all +replconf|listening-port', 'REPLCONF', 'listening-port', cats), true);
    assert.equal(aclAllows('-@all +replconf|capa', 'REPLCONF', 'listening-port', cats), false);
    assert.equal(aclAllows('allcommands', 'PSYNC', '?', cats), true);
    assert.equal(aclAllows('-@all +@admin', 'PSYNC', '?', undefined), undefined, 'categories unknown');
  });

  it('turns an exception in a check into an error finding naming the check', async () => {
    const ctx = new PrecheckContext(endpoint(1), endpoint(2));
    const findings = await runCheck('memory', async () => {
      throw new Error('boom');
    }, ctx);
    assert.deepEqual(findings, [{
      id: 'check-failed',
      severity: 'error',
      message: 'the memory check failed: boom',
      remedy: 'run the precheck again; if it fails the same way, check the server named, or report the message',
    }]);
  });
});
