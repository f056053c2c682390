/**
 * The example flows in examples/, as a user imports them, in a real Node-RED runtime (the
 * built nodes and the core nodes they use) against real servers:
 *
 * - every example deploys against live standalone servers and its sources reach streaming;
 * - cluster-to-cluster.json copies a 3-master cluster into a 3-master cluster with another slot
 *   layout, through its 3 router partitions and 3 sinks, and the destination ends up equal to
 *   the source after the full sync and a stream of writes;
 * - function-rename-prefix.json delivers keys written under legacy: under app: (in the full
 *   sync and in the stream, multi-key and cross-slot commands too) into a cluster, others as
 *   they were;
 * - progress-dashboard.json serves its page and its JSON over HTTP with the real numbers of a
 *   sync, and shows an error of the sink.
 *
 * Only the endpoints (where the servers are) and the spool directories are changed in a flow.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jsonBytes } from '../lib/rdb/json';
import { startRedis, type RedisCluster, type RedisServer, type StartClusterOptions } from './harness';
import { TestServers } from './support/servers';
import { converge, keyspaceOf, type Keyspace } from './support/compare';
import { builtNode, coreNodes, getNode, loadFlow, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowNode, type NodeModule } from './support/node-red';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

const EXAMPLES = resolve(__dirname, '..', 'examples');
const PKG = JSON.parse(readFileSync(resolve(__dirname, '..', 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const OUR_TYPES = Object.keys(PKG['node-red'].nodes);

type Target = RedisServer | RedisCluster;

/** Our nodes and every core node an example uses. */
function modules(): NodeModule[] {
  return [
    ...OUR_TYPES.map((t) => builtNode(t)),
    ...coreNodes(
      'common/20-inject.js',
      'common/21-debug.js',
      'common/25-catch.js',
      'common/25-status.js',
      'common/90-comment.js',
      'function/10-function.js',
      'function/80-template.js',
      'network/21-httpin.js',
    ),
  ];
}

function readExample(file: string): FlowNode[] {
  return JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as FlowNode[];
}

function endpointAt(target: Target): Partial<FlowNode> {
  if ('seeds' in target) {
    return { mode: 'cluster', host: target.seeds[0].host, port: String(target.seeds[0].port), seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') };
  }
  return { mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

/** An example with the endpoints its sources read from at `source`, every other endpoint at `destination`. */
function exampleAt(file: string, source: Target, destination: Target, dir: string): FlowNode[] {
  const flow = readExample(file);
  const sourceEndpoints = new Set(flow.filter((n) => n.type === 'redis-replica-source' || n.type === 'redis-scan-source').map((n) => n.endpoint));
  for (const n of flow) {
    if (n.type === 'redis-endpoint') Object.assign(n, endpointAt(sourceEndpoints.has(n.id) ? source : destination));
    if (n.type === 'redis-replica-source') n.spoolDir = join(dir, n.id);
    if (n.type === 'redis-scan-source') n.stateDir = join(dir, n.id);
  }
  return flow;
}

const ofType = (flow: FlowNode[], type: string): FlowNode[] => flow.filter((n) => n.type === type);

/** What the example's own catch nodes send on (to its debug nodes), as "node: message". */
function caughtErrors(flow: FlowNode[]): string[] {
  const errors: string[] = [];
  const catchers = ofType(flow, 'catch');
  assert.ok(catchers.length > 0, 'the example has a catch node');
  const targets = new Set(catchers.flatMap((c) => c.wires?.[0] ?? []));
  for (const id of targets) {
    getNode<EventEmitter>(id).on('input', (msg: { error?: { message?: string; source?: { id?: string; type?: string } } }) => {
      errors.push(`${msg.error?.source?.type} ${msg.error?.source?.id}: ${msg.error?.message}`);
    });
  }
  return errors;
}

/** A converge option: the flow's caught errors end the wait. */
const caught = (errors: string[]) => (): string | null => (errors.length > 0 ? `errors: ${JSON.stringify(errors)}` : null);

function keyCount(ks: Keyspace): number {
  return Object.values(ks).reduce((n, db) => n + Object.keys(db).length, 0);
}

describe('examples', function () {
  before(startNodeRed);
  after(stopNodeRed);

  describe('every example deploys and runs', function () {
    this.timeout(60_000);
    afterEach(unloadFlow);
    let server: RedisServer;
    let destination: RedisServer;
    let dir: string;
    before(async () => {
      server = await startRedis();
      destination = await startRedis();
      dir = mkdtempSync(join(tmpdir(), 'examples-'));
    });
    after(async () => {
      await server.stop();
      await destination.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
    it('there is at least one example for each node type', () => {
      const types = new Set(files.flatMap((f) => readExample(f).map((n) => n.type)));
      for (const t of OUR_TYPES) assert.ok(types.has(t), `no example uses ${t}`);
    });

    it('no two examples share a node id (an import would give the second new ids, breaking its links)', () => {
      const owner = new Map<string, string>();
      for (const f of files) {
        for (const n of readExample(f)) {
          assert.ok(!owner.has(n.id) || owner.get(n.id) === f, `${f} and ${owner.get(n.id)} both have a node ${n.id}`);
          owner.set(n.id, f);
        }
      }
    });

    for (const file of files) {
      it(`${file}: deploys against a live server and its sources reach streaming`, async () => {
        // endpoints a source reads from point at one live server, every other endpoint at another
        const flow = exampleAt(file, server, destination, dir);
        await loadFlow(modules(), flow);
        for (const src of ofType(flow, 'redis-replica-source')) {
          const seen = statusesOf(src.id);
          // an inject named "start" wired to it starts a source set to start on input
          for (const inj of flow.filter((n) => n.type === 'inject' && n.name === 'start' && n.wires?.[0]?.includes(src.id))) {
            getNode<{ receive(m: object): void }>(inj.id).receive({});
          }
          await waitFor(() => seen.some((s) => s.startsWith('green:streaming')), 15_000, `${src.id} streaming`);
        }
        for (const src of ofType(flow, 'redis-scan-source')) {
          const seen = statusesOf(src.id);
          await waitFor(() => seen.some((s) => s.startsWith('green:live')), 15_000, `${src.id} live`);
        }
      });
    }
  });

  describe('scenarios', function () {
    this.timeout(180_000);
    let dir: string;
    const servers = new TestServers();
    const server = (): Promise<RedisServer> => servers.server();
    const cluster = (opts: StartClusterOptions): Promise<RedisCluster> => servers.cluster(opts);
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'examples-'));
    });
    afterEach(async () => {
      await unloadFlow();
      await servers.stopAll();
      rmSync(dir, { recursive: true, force: true });
    });

    it('cluster-to-cluster.json: a 3-master cluster into 3 masters with another slot layout, full sync then stream, over 3 partitions', async () => {
      const [src, dst] = await Promise.all([
        cluster({ masters: 3, replicas: 0 }),
        // a layout unlike the source's (0-5460, 5461-10922, 10923-16383): uneven, one master with two ranges
        cluster({ replicas: 0, slots: [[[0, 2999], [9000, 10999]], [[3000, 8999]], [[11000, 16383]]] }),
      ]);
      const c = src.client();
      await fillAllTypes(c, 'f:', 20);
      // keys without a hash tag: spread over every slot range of both layouts
      for (let i = 0; i < 300; i++) await c.set(`plain:${i}`, `value-${i}`);

      const flow = exampleAt('cluster-to-cluster.json', src, dst, dir);
      const [source] = ofType(flow, 'redis-replica-source');
      const sinks = ofType(flow, 'redis-cluster-sink');
      assert.equal(sinks.length, 3, 'one sink per router partition');
      await loadFlow(modules(), flow);
      const errors = caughtErrors(flow);
      const sourceStatus = statusesOf(source.id);
      const sinkStatus = sinks.map((s) => statusesOf(s.id));
      await waitFor(() => errors.length > 0 || sourceStatus.some((s) => s.startsWith('green:streaming')), 60_000, 'the source to stream');
      assert.deepEqual(errors, []);

      // the stream: writes after the full sync, each multi-key command within one hash tag as a cluster source requires
      await nonIdempotentWrites(c, 'w:', 30);
      await c.mset('m:{x}a', 'a', 'm:{x}b', 'b');
      await c.rename('f:{t1}str', 'f:{t1}renamed');
      await c.lmove('f:{t2}list', 'f:{t2}moved', 'LEFT', 'RIGHT');
      await c.sunionstore('f:{t3}union', 'f:{t3}set', 'f:{t3}intset');
      await c.multi().incr('tx:{y}n').rpush('tx:{y}l', 'a', 'b').set('tx:{y}s', 'x').exec();
      for (let i = 0; i < 300; i += 3) await c.del(`plain:${i}`);
      for (let i = 1; i < 300; i += 3) await c.set(`plain:${i}`, `new-${i}`, 'PX', 600_000);
      await c.expire('plain:2', 900);

      await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { ms: 45_000, failure: caught(errors), pollMs: 500 });
      const final = await keyspaceOf(dst, [0]);
      assert.ok(keyCount(final) > 400, `${keyCount(final)} keys compared`);
      assert.equal(final[0]['plain:1'].value, 'new-1', 'a write of the stream arrived');
      // the destination's layout spread the keys over all its masters
      for (const m of await dst.masters()) {
        const client = m.client();
        try {
          const keys = (await client.keys('*')).filter((k) => !k.startsWith('redis-sync:'));
          assert.ok(keys.length > 50, `destination master ${m.port} holds ${keys.length} keys`);
        } finally {
          client.disconnect();
        }
      }
      // each partition's sink applied its share
      for (const [i, seen] of sinkStatus.entries()) assert.ok(seen.some((s) => s.startsWith('green:applied')), `sink ${i + 1}: ${seen.join(', ')}`);
      assert.deepEqual(errors, []);
    });

    it('function-rename-prefix.json: keys under legacy: arrive under app: in a cluster, in the full sync and the stream; other keys as they were', async () => {
      const [src, dst] = await Promise.all([server(), cluster({ masters: 3, replicas: 0 })]);
      const c = src.client();
      const binaryKey = Buffer.concat([Buffer.from('legacy:'), Buffer.from([0xff, 0x00, 0x0d, 0x0a])]);
      // the full sync: every type under the prefix, keys without hash tags (so renaming changes their slot), others
      await fillAllTypes(c, 'legacy:', 6);
      for (let i = 0; i < 120; i++) {
        await c.set(`legacy:n:${i}`, `n-${i}`);
        await c.set(`other:n:${i}`, `o-${i}`);
      }
      await c.hset('legacy:hash', 'f1', 'v1', 'f2', 'v2');
      await c.rpush('legacy:list', 'a', 'b', 'c');
      await c.sadd('legacy:set', 'x', 'y');
      await c.sadd('other:set', 'y', 'z');
      await c.zadd('legacy:zset', 1, 'one', 2, 'two');
      await c.set('legacy', 'no colon: not the prefix');
      await c.set('xlegacy:y', 'prefix not at the start');
      await c.set('LEGACY:upper', 'another prefix');
      await c.set(binaryKey, Buffer.from([0, 1, 255]));
      const db1 = src.client({ db: 1 });
      await db1.set('legacy:in-db1', 'dropped: a cluster has only db 0');

      const flow = exampleAt('function-rename-prefix.json', src, dst, dir);
      const [source] = ofType(flow, 'redis-replica-source');
      await loadFlow(modules(), flow);
      const errors = caughtErrors(flow);
      const sourceStatus = statusesOf(source.id);
      await waitFor(() => errors.length > 0 || sourceStatus.some((s) => s.startsWith('green:streaming')), 30_000, 'the source to stream');
      assert.deepEqual(errors, []);

      // the stream: one-key, multi-key, cross-slot and transactional commands
      await c.set('legacy:s:1', 'streamed');
      for (let i = 0; i < 5; i++) await c.incr('legacy:counter');
      await c.mset('legacy:m:1', 'a', 'other:m:2', 'b', 'legacy:m:3', 'c');
      await c.rename('legacy:n:0', 'legacy:renamed');
      await c.rename('legacy:n:1', 'other:was-legacy');
      await c.rename('other:n:0', 'legacy:was-other');
      await c.lmove('legacy:list', 'legacy:list2', 'LEFT', 'RIGHT');
      await c.sunionstore('legacy:union', 'legacy:set', 'other:set');
      await c.del('legacy:n:2', 'other:n:1', 'legacy:n:3');
      await c.multi().incr('legacy:tx').rpush('legacy:txlist', 'p', 'q').set('other:tx', '1').exec();
      await c.expire('legacy:n:4', 900);
      await c.hset('legacy:hash', 'f3', 'v3');
      await c.append(binaryKey, Buffer.from([7]));
      await db1.set('legacy:in-db1', 'still dropped');

      const renamed = (name: string): string => {
        const key = name.startsWith('b64:') ? Buffer.from(name.slice(4), 'base64') : Buffer.from(name);
        return key.subarray(0, 7).toString('latin1') === 'legacy:' ? jsonBytes(Buffer.concat([Buffer.from('app:'), key.subarray(7)])) : name;
      };
      const expected = async (): Promise<Keyspace> => {
        const source0 = (await keyspaceOf(src, [0]))[0];
        return { 0: Object.fromEntries(Object.entries(source0).map(([k, v]) => [renamed(k), v])) };
      };
      await converge(expected, () => keyspaceOf(dst, [0]), { ms: 45_000, failure: caught(errors), pollMs: 500 });
      const final = (await keyspaceOf(dst, [0]))[0];
      const names = Object.keys(final);
      assert.deepEqual(names.filter((k) => k.startsWith('legacy:')), [], 'no key kept the old prefix');
      assert.ok(names.filter((k) => k.startsWith('app:')).length > 150, 'keys arrived under the new prefix');
      assert.equal(final['app:renamed']?.value, 'n-0');
      assert.equal(final['other:was-legacy']?.value, 'n-1');
      assert.equal(final['app:was-other']?.value, 'o-0');
      assert.equal(final['app:counter']?.value, '5');
      assert.equal(final['legacy']?.value, 'no colon: not the prefix');
      assert.ok('xlegacy:y' in final && 'LEGACY:upper' in final && 'other:n:5' in final, 'other keys keep their names');
      assert.ok(jsonBytes(Buffer.concat([Buffer.from('app:'), binaryKey.subarray(7)])) in final, 'the binary key arrived renamed');
      assert.ok(!('app:in-db1' in final), 'db 1 was left out');
      assert.deepEqual(errors, []);
    });

    it('progress-dashboard.json: the page and the JSON show phase, keys and commands applied, lag and errors of a real sync', async () => {
      const [src, dst] = await Promise.all([server(), server()]);
      const c = src.client();
      for (let i = 0; i < 400; i++) await c.set(`d:${i}`, `value-${i}`);
      await fillAllTypes(c, 'f:', 10);
      const keys = await c.dbsize();

      const flow = exampleAt('progress-dashboard.json', src, dst, dir);
      // the runtime's httpNode app, where the example's http in nodes register their routes
      let httpNode: RequestListener | undefined;
      const grabHttpNode: NodeModule = (RED) => {
        httpNode = (RED as unknown as { httpNode: RequestListener }).httpNode;
      };
      await loadFlow([...modules(), grabHttpNode], flow);
      assert.ok(httpNode, 'the runtime has an httpNode app');
      const web = http.createServer(httpNode);
      web.listen(0, '127.0.0.1');
      await once(web, 'listening');
      try {
        const base = `http://127.0.0.1:${(web.address() as AddressInfo).port}/redis-sync`;
        const json = async (): Promise<Progress> => {
          const res = await fetch(`${base}/progress.json`);
          assert.equal(res.status, 200);
          assert.match(String(res.headers.get('content-type')), /application\/json/);
          return (await res.json()) as Progress;
        };

        const synced = await waitFor(async () => {
          const p = await json();
          return p.phase === 'streaming' && p.applied.keys === keys ? p : null;
        }, 30_000, `the JSON to show streaming and ${keys} keys applied`);
        assert.equal(synced.fullSync.keysRead, keys);
        assert.ok(synced.fullSync.bytesRead > 0);
        // done: 100 % whether measured by the announced size (disk-based) or estimated by keys (diskless, Redis 7's default)
        assert.equal(synced.fullSync.percent, 100);
        assert.equal(synced.fullSync.estimated, false);
        assert.equal(synced.errors.count, 0);

        // 60 writes of the stream
        for (let i = 0; i < 40; i++) await c.incr('d:counter');
        for (let i = 0; i < 20; i++) await c.set(`d:new:${i}`, 'x');
        const p = await waitFor(async () => {
          const now = await json();
          // the source reports once a second: its offset moves past where the full sync left it
          return now.applied.commands >= 60 && Number(now.shards[0]?.offset) > Number(synced.shards[0].offset) ? now : null;
        }, 15_000, 'the JSON to show 60 commands applied and the offset moved');
        assert.equal(p.applied.commands, 60);
        assert.equal(p.applied.keys, keys);
        assert.equal(p.phase, 'streaming');
        assert.equal(p.phaseLabel, 'streaming');
        assert.equal(typeof p.lag.ms, 'number');
        assert.equal(typeof p.lag.bytes, 'number');
        // no more writes: the sink applies everything the source received, and the JSON says so
        const idle = await waitFor(async () => {
          const now = await json();
          return now.lag.caughtUp ? now : null;
        }, 10_000, 'the JSON to say caught up');
        assert.equal(idle.lag.bytes, 0);
        assert.equal(p.shards.length, 1);
        assert.equal(p.shards[0].shard, 'standalone');
        assert.equal(p.errors.count, 0);
        assert.ok(p.statuses.some((s) => s.fill === 'green' && s.text.startsWith('streaming')), JSON.stringify(p.statuses));
        assert.ok(p.statuses.some((s) => s.fill === 'green' && s.text.startsWith('applied')), JSON.stringify(p.statuses));
        assert.equal(await dst.command('GET', 'd:counter'), '40');

        const res = await fetch(`${base}/progress`);
        assert.equal(res.status, 200);
        assert.match(String(res.headers.get('content-type')), /text\/html/);
        const html = await res.text();
        assert.match(html, /<meta http-equiv="refresh" content="2">/);
        assert.match(html, /id="phase">streaming</);
        assert.match(html, new RegExp(`id="keys-read">${keys}<`));
        assert.match(html, new RegExp(`id="keys-applied">${keys}<`));
        assert.match(html, /id="commands-applied">60</);
        assert.match(html, /id="errors">0</);
        assert.match(html, /<td>standalone<\/td><td>streaming<\/td>/);

        // an error of the sink reaches the page: a key the destination holds as another type
        await dst.command('SET', 'd:clash', 'a string at the destination');
        await c.sadd('d:clash', 'member');
        const failed = await waitFor(async () => {
          const now = await json();
          return now.errors.count > 0 ? now : null;
        }, 15_000, 'the JSON to count the error');
        assert.equal(failed.errors.count, 1);
        assert.equal(failed.errors.last?.node, 'redis-cluster-sink');
        assert.match(String(failed.errors.last?.message), /WRONGTYPE/);
        // the status is the start of the message (60 characters): the command and the key
        assert.ok(failed.statuses.some((s) => s.fill === 'red' && s.text === 'failed: WRONGTYPE'), JSON.stringify(failed.statuses));
        const page = await (await fetch(`${base}/progress`)).text();
        assert.match(page, /id="errors">1</);
        assert.match(page, /id="last-error">Last error, from redis-cluster-sink: [^<]*WRONGTYPE/);
      } finally {
        web.close();
      }
    });
  });
});

/** The JSON of progress-dashboard.json (its "read progress" function). */
interface Progress {
  phase: string;
  phaseLabel: string;
  fullSync: { keysRead: number; bytesRead: number; rdbBytes: number | null; percent: number | null; estimated: boolean };
  applied: { keys: number; commands: number; keysPerSecond: number; commandsPerSecond: number; skippedReplays: number; redirects: number };
  lag: { ms: number; bytes: number; caughtUp: boolean };
  spoolBytes: number;
  reconnects: number;
  errors: { count: number; last: { node: string; message: string; at: number } | null };
  shards: Array<{ shard: string; phase: string; node: string | null; offset: number | null; lagBytes: number; lagMs: number; lastError: string | null }>;
  statuses: Array<{ node: string; fill: string; text: string }>;
  updated: string | null;
}
