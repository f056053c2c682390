/**
 * Bad configurations, each deployed in a real Node-RED runtime as a user would wire it (a
 * source, a sink, a Catch node): what the user sees for each (the status text and colour),
 * what the node logs (node.error: Node-RED writes it to the log unless a Catch node takes it)
 * and what Catch nodes get. Faults no retry cures end red with their cause named; what can
 * heal by itself is retried, yellow, named.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisServer } from './harness';
import { freePort } from './support/net';
import { builtNode, coreNodes, errorsOf, getNode, helper, loadFlow, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowCredentials, type FlowNode, type HelperMessage, type HelperNode } from './support/node-red';
import { TestServers } from './support/servers';
import { makeTestCertificates, type TestCertificates } from './support/tls';

interface Side {
  port: number;
  password?: string;
}

/** source -> sink, each endpoint with its own credentials, and a Catch node for the tab. */
function syncFlow(dir: string, source: Side, destination: Side, sink: Partial<FlowNode> = {}): { flow: FlowNode[]; credentials: FlowCredentials } {
  const endpoint = (id: string, side: Side): FlowNode => ({ id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(side.port), connectTimeout: 2000 });
  return {
    flow: [
      { id: 'tab', type: 'tab' },
      endpoint('srcEp', source),
      endpoint('dstEp', destination),
      { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, wires: [['sink'], []] },
      { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', ...sink, wires: [[]] },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ],
    credentials: {
      srcEp: source.password === undefined ? {} : { password: source.password },
      dstEp: destination.password === undefined ? {} : { password: destination.password },
    },
  };
}

/** A Catch node's message: `error.source` names the node that raised it. */
type CaughtMessage = HelperMessage & { error: { message: string; source?: { id?: string } } };

/** What a user sees of one node: its statuses ("fill:text"), its node.error texts, and the Catch messages it caused. */
interface Seen {
  statuses: string[];
  errors: string[];
  caught: CaughtMessage[];
}

/** Fills a server with `keys` strings of 200 bytes (a Lua loop: one round trip). */
async function fill(server: RedisServer, keys: number): Promise<void> {
  await server.command('EVAL', `for i = 1, ${keys} do redis.call('SET', 'k:' .. i, string.rep('v', 200)) end`, '0');
}

describe('bad configurations in a real Node-RED runtime: what the user sees', function () {
  this.timeout(120_000);
  const servers = new TestServers();
  let dir: string;
  let src: Seen;
  let sink: Seen;
  const nodes = () => [builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-cluster-sink'), ...coreNodes('common/25-catch.js')];

  async function deploy(f: { flow: FlowNode[]; credentials: FlowCredentials }): Promise<void> {
    await loadFlow(nodes(), f.flow, f.credentials);
    src = { statuses: statusesOf('src'), errors: errorsOf('src'), caught: [] };
    sink = { statuses: statusesOf('sink'), errors: errorsOf('sink'), caught: [] };
    // a Catch message names the node that raised it
    getNode<HelperNode<CaughtMessage>>('caught').on('input', (m) => ({ src, sink })[m.error.source?.id ?? '']?.caught.push(m));
  }

  before(startNodeRed);
  after(async () => {
    await stopNodeRed();
    await servers.stopAll();
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'bad-config-'))));
  afterEach(async () => {
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wrong source password: red "auth failed", the server, its answer and what to do in the log and at Catch', async () => {
    const source = await servers.server({ config: { requirepass: 'right' } });
    const destination = await servers.server();
    await deploy(syncFlow(dir, { port: source.port, password: 'wrong' }, { port: destination.port }));
    await waitFor(() => src.statuses.at(-1) === 'red:auth failed', 10_000, `red "auth failed" (${src.statuses.join(', ')})`);
    const story = new RegExp(`127\\.0\\.0\\.1:${source.port}: authentication as \\(default user\\) failed: WRONGPASS.*check the username and password of the source endpoint`);
    assert.equal(src.errors.length, 1, src.errors.join('\n'));
    assert.match(src.errors[0], story);
    assert.equal(src.caught.length, 1);
    assert.match(String(src.caught[0].error?.message), story);
    assert.ok(!src.statuses.includes('grey:stopped'), src.statuses.join(', '));
  });

  it('wrong destination password: red "auth failed" at deploy, before the source sends anything', async () => {
    const source = await servers.server();
    const destination = await servers.server({ config: { requirepass: 'right' } });
    await deploy(syncFlow(dir, { port: source.port }, { port: destination.port, password: 'wrong' }));
    // a stock 7.0 source holds its full sync back 5 s: the sink knows long before
    await waitFor(() => sink.statuses.at(-1) === 'red:auth failed', 4000, `red "auth failed" (${sink.statuses.join(', ')})`);
    const story = new RegExp(`127\\.0\\.0\\.1:${destination.port}: authentication as \\(default user\\) failed: WRONGPASS.*check the username and password of the destination endpoint`);
    assert.equal(sink.errors.length, 1, sink.errors.join('\n'));
    assert.match(sink.errors[0], story);
    assert.equal(sink.caught.length, 1);
    assert.match(String(sink.caught[0].error?.message), story);
  });

  describe('TLS', () => {
    let certs: TestCertificates;
    let tlsOnly: RedisServer;
    let tlsPort: number;
    let plain: RedisServer;

    before(async () => {
      certs = await makeTestCertificates();
      tlsPort = await freePort();
      // with its plain port closed the harness cannot SHUTDOWN it: SIGKILL soon instead
      tlsOnly = await servers.server({ config: certs.serverConfig(tlsPort, 'no'), stopTimeoutMs: 300 });
      assert.equal(await tlsOnly.command('CONFIG', 'SET', 'port', '0'), 'OK');
      plain = await servers.server();
    });
    after(() => certs?.remove());

    it('a TLS-only source reached without TLS: red "TLS required", saying to tick "Use TLS"', async () => {
      await deploy(syncFlow(dir, { port: tlsPort }, { port: plain.port }));
      await waitFor(() => src.statuses.at(-1) === 'red:TLS required', 10_000, `red "TLS required" (${src.statuses.join(', ')})`);
      const story = new RegExp(`127\\.0\\.0\\.1:${tlsPort}: .* before answering anything, as a TLS-only port does to a plain connection: tick "Use TLS" in the endpoint`);
      assert.equal(src.errors.length, 1, src.errors.join('\n'));
      assert.match(src.errors[0], story);
      assert.equal(src.caught.length, 1);
      assert.match(String(src.caught[0].error?.message), story);
      assert.ok(!src.statuses.some((s) => s.startsWith('yellow:reconnecting')), `not retried: ${src.statuses.join(', ')}`);
    });

    it('a TLS-only destination reached without TLS: red "TLS required" at deploy', async () => {
      await deploy(syncFlow(dir, { port: plain.port }, { port: tlsPort }));
      await waitFor(() => sink.statuses.at(-1) === 'red:TLS required', 4000, `red "TLS required" (${sink.statuses.join(', ')})`);
      const story = new RegExp(`127\\.0\\.0\\.1:${tlsPort}: .* before answering anything, as a TLS-only port does to a plain connection: tick "Use TLS" in the endpoint`);
      assert.equal(sink.errors.length, 1, sink.errors.join('\n'));
      assert.match(sink.errors[0], story);
      assert.equal(sink.caught.length, 1);
      assert.match(String(sink.caught[0].error?.message), story);
      assert.ok(!sink.statuses.some((s) => s.startsWith('yellow:')), `not retried: ${sink.statuses.join(', ')}`);
    });
  });

  it('a destination out of memory under noeviction: red "OOM: memory full", the refused key and what to do', async () => {
    const source = await servers.server();
    const destination = await servers.server({ config: { maxmemory: '3mb', 'maxmemory-policy': 'noeviction' } });
    await fill(source, 20_000); // about 5 MB
    await deploy(syncFlow(dir, { port: source.port }, { port: destination.port }));
    await waitFor(() => sink.statuses.at(-1) === 'red:OOM: memory full', 30_000, `red "OOM: memory full" (${sink.statuses.join(', ')})`);
    const story = new RegExp(`the destination 127\\.0\\.0\\.1:${destination.port} refused the snapshot key "k:\\d+" \\(db 0\\): OOM command not allowed .* The destination is full: .*Raise its maxmemory .* then redeploy`);
    assert.equal(sink.errors.length, 1, sink.errors.join('\n'));
    assert.match(sink.errors[0], story);
    assert.equal(sink.caught.length, 1);
    assert.match(String(sink.caught[0].error?.message), story);
  });

  it('an evicting destination is refused at deploy, red "eviction policy"; volatile-* too, saying why', async () => {
    const source = await servers.server();
    const destination = await servers.server({ config: { maxmemory: '1gb', 'maxmemory-policy': 'allkeys-lru' } });
    await deploy(syncFlow(dir, { port: source.port }, { port: destination.port }));
    await waitFor(() => sink.statuses.at(-1) === 'red:eviction policy', 4000, `red "eviction policy" (${sink.statuses.join(', ')})`);
    const story = new RegExp(`the destination 127\\.0\\.0\\.1:${destination.port} has maxmemory-policy allkeys-lru: it evicts keys once it reaches maxmemory, .*CONFIG SET maxmemory-policy noeviction.*or allow an evicting destination in the sink's settings`);
    assert.equal(sink.errors.length, 1, sink.errors.join('\n'));
    assert.match(sink.errors[0], story);
    assert.equal(sink.caught.length, 1);
    assert.match(String(sink.caught[0].error?.message), story);
    await unloadFlow();

    await destination.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
    await deploy(syncFlow(dir, { port: source.port }, { port: destination.port }));
    await waitFor(() => sink.statuses.at(-1) === 'red:eviction policy', 4000, `red "eviction policy" (${sink.statuses.join(', ')})`);
    assert.match(sink.errors[0], /has maxmemory-policy volatile-lru: it evicts keys that have a TTL once it reaches maxmemory; those keys are data too/);
    assert.equal(sink.caught.length, 1);
  });

  it('an evicting destination allowed in the sink: it syncs, and turns red with the count once it evicts', async () => {
    const source = await servers.server();
    const destination = await servers.server({ config: { maxmemory: '3mb', 'maxmemory-policy': 'allkeys-lru' } });
    await fill(source, 20_000);
    await deploy(syncFlow(dir, { port: source.port }, { port: destination.port }, { allowEviction: true }));
    await waitFor(() => sink.statuses.some((s) => s.startsWith('green:applied')), 20_000, `the sink to apply (${sink.statuses.join(', ')})`);
    await waitFor(() => /^red:evicted \S+ keys$/.test(sink.statuses.at(-1) ?? ''), 20_000, `red "evicted N keys" (${sink.statuses.join(', ')})`);
    const evicted = Number(/evicted_keys:(\d+)/.exec(String(await destination.command('INFO', 'stats')))?.[1]);
    assert.ok(evicted > 0, 'the destination did evict');
    assert.equal(sink.errors.length, 1, `said once: ${sink.errors.join('\n')}`);
    assert.match(sink.errors[0], new RegExp(`the destination evicted \\d+ keys since the sink started \\(127\\.0\\.0\\.1:${destination.port}: \\d+\\): they are gone from the copy .* noeviction`));
    assert.equal(sink.caught.length, 1);
    await sleep(2500); // another round of the watch: still red, still said once
    assert.match(sink.statuses.at(-1) ?? '', /^red:evicted \S+ keys$/);
    assert.equal(sink.caught.length, 1);
  });

  it('an unreachable source is retried with backoff, yellow "unreachable (n)", said once per reason', async () => {
    const destination = await servers.server();
    const port = await freePort();
    await deploy(syncFlow(dir, { port }, { port: destination.port }));
    await waitFor(() => src.statuses.includes('yellow:unreachable (2)'), 10_000, `yellow "unreachable (2)" (${src.statuses.join(', ')})`);
    const story = new RegExp(`127\\.0\\.0\\.1:${port}: connect ECONNREFUSED .*check the host and port of the source endpoint.*retrying in \\d+ ms`);
    assert.equal(src.errors.length, 1, `once per reason: ${src.errors.join('\n')}`);
    assert.match(src.errors[0], story);
    assert.equal(src.caught.length, 1);
    assert.match(String(src.caught[0].error?.message), story);
    assert.ok(!src.statuses.some((s) => s.startsWith('red:')), src.statuses.join(', '));
  });

  it('an unreachable destination is retried, yellow "unreachable (n)", with a warning in the log (not an error: it may come)', async () => {
    const source = await servers.server();
    const port = await freePort();
    await deploy(syncFlow(dir, { port: source.port }, { port }));
    await waitFor(() => sink.statuses.includes('yellow:unreachable (2)'), 10_000, `yellow "unreachable (2)" (${sink.statuses.join(', ')})`);
    const warnings = helper.log().args.filter(([o]) => o.level === 30 && o.type === 'redis-cluster-sink').map(([o]) => String(o.msg));
    assert.equal(warnings.length, 1, `once per outage: ${warnings.join('\n')}`);
    assert.match(warnings[0], new RegExp(`^no connection to the destination \\(127\\.0\\.0\\.1:${port}: connect ECONNREFUSED .*\\): connecting again, for up to 5 minutes`));
    assert.deepEqual([sink.errors, sink.caught], [[], []]);
  });

  it('a source that is a replica whose master is down is retried, yellow "no master link (n)"', async () => {
    const destination = await servers.server();
    const replica = await servers.server({ config: { replicaof: `127.0.0.1 ${await freePort()}` } });
    await deploy(syncFlow(dir, { port: replica.port }, { port: destination.port }));
    await waitFor(() => src.statuses.includes('yellow:no master link (2)'), 10_000, `yellow "no master link (2)" (${src.statuses.join(', ')})`);
    const story = new RegExp(`127\\.0\\.0\\.1:${replica.port}: this node is a replica whose link to its own master is down \\(PSYNC: NOMASTERLINK .*\\): check that master`);
    assert.equal(src.errors.length, 1, `once per reason: ${src.errors.join('\n')}`);
    assert.match(src.errors[0], story);
    assert.equal(src.caught.length, 1);
    assert.match(String(src.caught[0].error?.message), story);
  });

  it('an invalid endpoint (a port that is no number): red "failed: CONFIG" on the nodes using it, naming the field', async () => {
    const f = syncFlow(dir, { port: 0 }, { port: 0 });
    f.flow = f.flow.map((n) => (n.type === 'redis-endpoint' ? { ...n, port: 'abc' } : n));
    await deploy(f);
    await waitFor(() => src.statuses.at(-1) === 'red:failed: CONFIG', 5000, `red "failed: CONFIG" (${src.statuses.join(', ')})`);
    const story = /^replication stopped: the source endpoint is invalid: port: must be an integer from 1 to 65535, got NaN \(fix it in its redis-endpoint node, then redeploy\)$/;
    assert.equal(src.errors.length, 1, src.errors.join('\n'));
    assert.match(src.errors[0], story);
    assert.equal(src.caught.length, 1);
    assert.match(String(src.caught[0].error?.message), story);
    await waitFor(() => sink.statuses.at(-1) === 'red:failed: CONFIG', 5000, `red "failed: CONFIG" (${sink.statuses.join(', ')})`);
    assert.deepEqual(sink.errors, ['the destination endpoint is invalid: port: must be an integer from 1 to 65535, got NaN (fix it in its redis-endpoint node, then redeploy)']);
    assert.equal(sink.caught.length, 1);
  });

  it('with no Catch node, the whole story goes to the log', async () => {
    const source = await servers.server({ config: { requirepass: 'right' } });
    const destination = await servers.server();
    const f = syncFlow(dir, { port: source.port, password: 'wrong' }, { port: destination.port });
    await loadFlow(nodes(), f.flow.filter((n) => n.type !== 'catch'), f.credentials);
    const logged = (): string[] => helper.log().args.filter(([o]) => o.level === 20 && o.type === 'redis-replica-source').map(([o]) => String(o.msg));
    await waitFor(() => logged().length > 0, 10_000, 'an error in the log');
    assert.match(logged()[0], /^replication stopped: 127\.0\.0\.1:\d+: authentication as \(default user\) failed: WRONGPASS.*check the username and password of the source endpoint/);
  });
});
