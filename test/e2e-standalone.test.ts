import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startRedis, type RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, getNode, loadFlow, received, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode, statusesOf } from './support/node-red';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

interface SinkNode {
  status: (s: { fill?: string; text?: string }) => void;
}

function pipeline(src: RedisServer, dst: RedisServer, dir: string, sink: Partial<FlowNode> = {}): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
    { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(dst.port) },
    { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchLatencyMs: 5, bigKeyMb: 0.0625, wires: [['sink'], []] },
    { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', exactlyOnce: true, ...sink, wires: [[]] },
  ];
}

describe('end to end in Node-RED: standalone source -> standalone destination', function () {
  this.timeout(180_000);
  let src: RedisServer;
  let dst: RedisServer;
  let c: Redis;
  let dir: string;
  const nodes = () => [builtNode('redis-endpoint'), builtNode('redis-replica-source'), builtNode('redis-cluster-sink')];

  before(async () => {
    await startNodeRed();
    src = await startRedis();
    dst = await startRedis();
    c = src.client();
  });
  after(async () => {
    await stopNodeRed();
    await src.stop();
    await dst.stop();
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-'));
    await c.flushall();
    await dst.client().flushall();
  });
  afterEach(async () => {
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies every type in several dbs, then live non-idempotent writes, and converges exactly', async () => {
    for (const db of [0, 3, 5]) {
      await c.select(db);
      await fillAllTypes(c, `db${db}:`, 12);
    }
    await c.select(0);
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const writing = nonIdempotentWrites(c, 'live:', 300); // during the full sync and after
    await writing;
    await converge(() => keyspaceOf(src, [0, 3, 5]), () => keyspaceOf(dst, [0, 3, 5]), { ms: 30_000 });
  });

  it('after a restart of the flow mid-stream, nothing is applied twice or lost', async () => {
    await fillAllTypes(c, 'a:', 5);
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const sinkTexts: string[] = [];
    const sink = getNode<SinkNode>('sink');
    const orig = sink.status.bind(sink);
    sink.status = (s) => {
      sinkTexts.push(String(s.text));
      orig(s);
    };
    await waitFor(() => sinkTexts.some((t) => t.startsWith('applied')), 10_000, 'the sink to apply');
    const writes = nonIdempotentWrites(c, 'n:', 400);
    await new Promise((r) => setTimeout(r, 150));
    await unloadFlow(); // a restart in the middle of the write load
    await writes;
    await loadFlow(nodes(), pipeline(src, dst, dir));
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { ms: 30_000 });
  });

  it('function libraries arrive from a source that never had a replica (offset 0)', async () => {
    // servers of its own: the suite's source has had replicas by now, and FLUSHALL keeps functions
    const fresh = await startRedis();
    const into = await startRedis();
    try {
      const fc = fresh.client();
      for (const name of ['first', 'second']) {
        await fc.call('FUNCTION', 'LOAD', `#!lua name=${name}\nredis.register_function('${name}_get', function(keys) return redis.call('get', keys[1]) end)`);
      }
      await fillAllTypes(fc, 'f:', 3);
      assert.match(await fc.info('replication'), /master_repl_offset:0\r\n/);
      await loadFlow(nodes(), pipeline(fresh, into, dir));
      await converge(() => keyspaceOf(fresh), () => keyspaceOf(into), { ms: 30_000 }); // the libraries too
      assert.equal(await into.command('FCALL', 'second_get', 1, 'f:string:0'), await fc.get('f:string:0'));
    } finally {
      await unloadFlow();
      await fresh.stop();
      await into.stop();
    }
  });

  it('"precheck and intercept" refuses a destination that holds keys', async () => {
    await c.set('x', '1');
    await dst.client().set('already', 'here');
    const flow = [
      ...pipeline(src, dst, dir, { conflict: 'intercept' }),
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
    await loadFlow([...nodes(), ...coreNodes('common/25-catch.js')], flow);
    const texts = statusesOf('sink');
    const caught = received('caught');
    await waitFor(() => caught.length > 0, 10_000, 'the refusal');
    assert.match(String(caught[0].error?.message), /holds 1 keys.*"precheck and intercept" needs it empty/);
    assert.equal(texts.at(-1), 'red:failed: NOT_EMPTY');
    assert.equal(await dst.client().exists('x'), 0);
  });
});
