import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { encodeCommand } from '../lib/resp/encoder';
import { startRedis, type RedisServer } from './harness';
import { listRdbFixtures } from './support/fixtures';
import { builtNode, coreNodes, getNode, loadFlow, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode, type HelperMessage, type HelperNode, type NodeModule, type NodeUnderTest, received, statusesOf, testFlow } from './support/node-red';


const nodes = (): NodeModule[] => [builtNode('redis-endpoint'), builtNode('redis-replica-source'), ...coreNodes('common/25-catch.js')];

function flow(port: number, spoolDir: string, extra: Partial<FlowNode> = {}): FlowNode[] {
  return testFlow(
    [
      { id: 'ep', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(port) },
      { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'ep', spoolDir, batchLatencyMs: 5, wires: [['ops'], ['progress']], ...extra },
    ],
    ['ops', 'progress'],
  );
}

/** Collects what the helper nodes receive (the operations of every batch as one list), and the source node's status texts. */
function collect(): { ops: Operation[]; progress: HelperMessage[]; caught: HelperMessage[]; statuses: string[] } {
  const ops: Operation[] = [];
  getNode<HelperNode>('ops').on('input', (m) => ops.push(...(m.payload as Operation[])));
  return { ops, progress: received('progress'), caught: received('caught'), statuses: statusesOf('src') };
}

async function masterOffset(c: Redis): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await c.info('replication'))?.[1]);
}

const incrCount = (ops: Operation[]): number => ops.filter((o): o is CommandOp => o.kind === 'command' && o.name === 'INCR').length;

describe('redis-replica-source node in a Node-RED runtime', function () {
  this.timeout(120_000);
  let server: RedisServer;
  let c: Redis;
  let dir: string;

  before(async () => {
    await startNodeRed();
    server = await startRedis();
    c = server.client();
  });
  after(async () => {
    await stopNodeRed();
    await server.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-source-'));
  });
  afterEach(async () => {
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts on deploy, sends the snapshot and the stream in batches, reports progress, and resumes after a Node-RED restart', async () => {
    await c.flushall();
    for (let i = 0; i < 30; i++) await c.set(`k${i}`, String(i));
    await loadFlow(nodes(), flow(server.port, dir));
    let got = collect();
    await waitFor(() => got.ops.some((o) => o.kind === 'snapshot-end'), 10_000, 'the snapshot');
    assert.equal(got.ops.filter((o) => o.kind === 'key').length, 30);
    for (let i = 0; i < 40; i++) await c.incr('n');
    const target = await masterOffset(c);
    await waitFor(() => got.progress.some((m) => ((m.payload as { shards: Array<{ offset: number }> }).shards[0]?.offset ?? -1) >= target), 10_000, 'progress at the offset');
    assert.equal(incrCount(got.ops), 40);
    await waitFor(() => got.statuses.some((s) => /^green:streaming lag \d+ms$/.test(s)), 5000, 'a streaming status');
    const p = got.progress[got.progress.length - 1].payload as { phase: string; snapshot: { keys: number }; spoolBytes: number };
    assert.equal(p.phase, 'streaming');
    assert.equal(p.snapshot.keys, 30);
    const firstRun = incrCount(got.ops);

    // Node-RED stops (close handler saves the position) and starts again
    await unloadFlow();
    const saved = JSON.parse(readFileSync(join(dir, 'positions.json'), 'utf8')) as Record<string, { offset: number }>;
    // the link may have taken a PING of the source since, so at or just past the last write
    assert.ok(saved.standalone.offset >= target && saved.standalone.offset < target + 200, `saved ${saved.standalone.offset}, written up to ${target}`);
    for (let i = 0; i < 25; i++) await c.incr('n');
    await loadFlow(nodes(), flow(server.port, dir));
    got = collect();
    await waitFor(async () => incrCount(got.ops) === 25, 10_000, 'the writes made while stopped');
    assert.ok(!got.ops.some((o) => o.kind === 'snapshot-begin'), 'a partial resync, no new snapshot');
    assert.equal(firstRun + incrCount(got.ops), Number(await c.get('n')));
  });

  it('waits for an input message when set to, and stops on "stop"', async () => {
    await c.flushall();
    await c.set('x', '1');
    await loadFlow(nodes(), flow(server.port, dir, { startOn: 'input' }));
    const got = collect();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(got.ops.length, 0, 'nothing before the start message');
    getNode<NodeUnderTest>('src').receive({ payload: { passed: true } });
    await waitFor(() => got.ops.some((o) => o.kind === 'snapshot-end'), 10_000, 'the snapshot');
    getNode<NodeUnderTest>('src').receive({ payload: 'stop' });
    await waitFor(() => got.statuses[got.statuses.length - 1] === 'grey:stopped', 5000, 'the stopped status');
    const before = got.ops.length;
    await c.set('y', '2');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.ops.length, before, 'nothing after stop');
  });

  it('reports an unreachable source in its status and to Catch nodes, and stays up', async () => {
    const dead = await startRedis();
    const port = dead.port;
    await dead.stop();
    await loadFlow(nodes(), flow(port, dir));
    const got = collect();
    await waitFor(() => got.caught.length > 0, 15_000, 'a caught error');
    assert.match(String(got.caught[0].error?.message), /ECONNREFUSED.*retrying in \d+ ms/);
    await waitFor(() => got.statuses.some((s) => s === 'yellow:unreachable (1)'), 5000, 'the unreachable status');
  });
});

/**
 * A fault injector, not a Redis: it answers a replica's handshake and then sends what a real
 * server cannot be made to send — garbage, or an RDB cut off — on the first connection, and a
 * good RDB (a real fixture file) on the next one.
 */
function faultyMaster(firstPayload: (rdb: Buffer) => Buffer, rdb: Buffer): Promise<{ port: number; psyncs: string[]; close: () => void }> {
  const psyncs: string[] = [];
  let connections = 0;
  const server = net.createServer((sock) => {
    const n = ++connections;
    let buf = '';
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let m;
      while ((m = /^\*(\d+)\r\n((?:\$\d+\r\n[^\r]*\r\n)+)/.exec(buf))) {
        buf = buf.slice(m[0].length);
        const words = [...m[2].matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((x) => x[1]);
        const cmd = words[0].toUpperCase();
        if (cmd === 'PING') sock.write('+PONG\r\n');
        else if (cmd === 'INFO') sock.write("-ERR unknown command 'INFO'\r\n");
        else if (cmd === 'REPLCONF') sock.write(words[1]?.toUpperCase() === 'ACK' ? '' : '+OK\r\n');
        else if (cmd === 'PSYNC') {
          psyncs.push(words.join(' '));
          const replid = 'f'.repeat(40);
          sock.write(`+FULLRESYNC ${replid} 0\r\n`);
          if (n === 1) {
            const bad = firstPayload(rdb);
            sock.write(Buffer.concat([Buffer.from(`$${rdb.length}\r\n`), bad]));
            if (bad.length < rdb.length) sock.destroy();
          } else {
            sock.write(Buffer.concat([Buffer.from(`$${rdb.length}\r\n`), rdb]));
            sock.write(encodeCommand(['SELECT', '0']));
            sock.write(encodeCommand(['SET', 'after', 'rdb']));
          }
        }
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, psyncs, close: () => server.close() })),
  );
}

describe('redis-replica-source node with a source that sends bad data', function () {
  this.timeout(60_000);
  let dir: string;
  const fixture = listRdbFixtures().find((f) => f.release === 'redis-7.0.15' && f.name === 'all-types');
  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-source-bad-'));
  });
  afterEach(async () => {
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, (rdb: Buffer) => Buffer, RegExp]> = [
    ['garbage instead of the RDB', (rdb) => Buffer.alloc(rdb.length, 0x41), /bad data from the source.*RDB BAD_MAGIC at byte 0/],
    ['an RDB cut in the middle', (rdb) => rdb.subarray(0, rdb.length >> 1), /closed the connection.*during the RDB transfer/],
  ];
  for (const [what, payload, expected] of cases) {
    it(`${what}: says why, retries with a clean full sync, and Node-RED stays up`, async () => {
      assert.ok(fixture);
      const rdb = readFileSync(fixture.rdbPath);
      const fake = await faultyMaster(payload, rdb);
      try {
        await loadFlow(nodes(), flow(fake.port, dir));
        const got = collect();
        const keys = Object.values(fixture.expected.databases).reduce((a, db) => a + Object.keys(db).length, 0);
        await waitFor(() => got.ops.some((o) => o.kind === 'command' && o.name === 'SET'), 20_000, 'the stream after the second, good sync');
        const lastBegin = got.ops.map((o) => o.kind).lastIndexOf('snapshot-begin');
        assert.equal(got.ops.slice(lastBegin).filter((o) => o.kind === 'key').length, keys, 'the good snapshot, whole and once');
        assert.equal(fake.psyncs.length, 2);
        assert.equal(fake.psyncs[1], 'PSYNC ? -1', 'the retry asks for a full sync, not to continue a broken one');
        assert.match(got.caught.map((m) => m.error?.message).join('\n'), expected, 'the reason reaches Catch nodes');
      } finally {
        fake.close();
      }
    });
  }
});

describe('redis-replica-source node with a sink: lag, caughtUp, status and the saved position count what the sink applied', function () {
  this.timeout(60_000);
  let source: RedisServer;
  let destination: RedisServer;
  let dir: string;
  before(async () => {
    await startNodeRed();
    source = await startRedis();
    destination = await startRedis();
  });
  after(async () => {
    await stopNodeRed();
    await source.stop();
    await destination.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-source-sink-'));
  });
  afterEach(async () => {
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Progress {
    phase: string;
    caughtUp: boolean;
    lagBytes: number;
    lagMs: number;
    shards: Array<{ received: number | null; applied: number | null; offset: number | null }>;
    sink: { deployed: boolean; attached: boolean; fault: { kind: string; reason: string } | null };
  }

  it('a sink that stops on WRONGTYPE: the source turns red "sink failed", lag grows from what the sink applied, caughtUp stays false, and the saved position stays below the refused write', async () => {
    const c = source.client();
    const d = destination.client();
    await c.flushall();
    await d.flushall();
    for (let i = 0; i < 20; i++) await c.set(`k${i}`, String(i));
    // a key the source will write as a set, a string on the destination: its SADD is refused
    await d.set('clash', 'a string');
    await loadFlow(
      [...nodes(), builtNode('redis-cluster-sink')],
      testFlow(
        [
          { id: 'ep', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(source.port) },
          { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destination.port) },
          { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'ep', spoolDir: dir, batchLatencyMs: 5, wires: [['sink'], ['progress']] },
          { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', wires: [[]] },
        ],
        ['progress'],
      ),
    );
    const progress = received('progress');
    const caught = received('caught');
    const statuses = statusesOf('src');
    const latest = (): Progress => progress[progress.length - 1].payload as Progress;

    // applied: everything received, caught up, green
    for (let i = 0; i < 10; i++) await c.incr('n');
    const before = await masterOffset(c);
    await waitFor(() => progress.length > 0 && latest().caughtUp && (latest().shards[0].applied ?? 0) >= before, 20_000, 'caught up after the snapshot and 10 writes');
    assert.equal(latest().lagBytes, 0);
    assert.equal(latest().lagMs, 0);
    assert.deepEqual(latest().sink, { deployed: true, attached: true, fault: null });
    await waitFor(() => /^green:streaming lag \d+ms$/.test(statuses.at(-1) ?? ''), 5000, 'a green streaming status');

    // the sink stops at the SADD; the writes after it are received and never applied
    await c.sadd('clash', 'm');
    const refused = await masterOffset(c);
    for (let i = 0; i < 10; i++) await c.incr('n');
    const after = await masterOffset(c);
    await waitFor(() => caught.some((m) => /WRONGTYPE/.test(String(m.error?.message))), 10_000, 'the sink failing');
    const stuck = await waitFor(() => {
      const p = latest();
      return (p.shards[0].received ?? 0) >= after ? p : null;
    }, 10_000, 'the source receiving every write');
    await waitFor(() => statuses.at(-1)?.startsWith('red:sink failed, lag '), 5000, 'a red "sink failed" status');
    assert.equal(stuck.caughtUp, false);
    assert.equal(stuck.sink.fault?.kind, 'failed');
    assert.match(String(stuck.sink.fault?.reason), /WRONGTYPE/);
    assert.ok((stuck.shards[0].applied ?? Infinity) < after, `applied ${stuck.shards[0].applied}, written up to ${after}`);
    assert.ok(stuck.lagBytes >= after - (stuck.shards[0].applied as number), `lag ${stuck.lagBytes} B`);
    // a second later the lag in ms has grown with the time the writes wait
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(latest().lagMs >= 1000, `lag ${latest().lagMs} ms`);
    assert.equal(latest().caughtUp, false);
    const sinceFailure = statuses.slice(statuses.findIndex((s) => s.startsWith('red:sink failed')));
    assert.ok(!sinceFailure.some((s) => s.startsWith('green:')), `no green status after the failure: ${sinceFailure.join(', ')}`);

    // what is saved as the resume point is what the sink applied, below the refused write
    await unloadFlow();
    const saved = JSON.parse(readFileSync(join(dir, 'positions.json'), 'utf8')) as Record<string, { offset: number }>;
    assert.ok(saved.standalone.offset >= before && saved.standalone.offset < refused, `saved ${saved.standalone.offset}: applied up to ${before}, the refused write ends at ${refused}`);
    c.disconnect();
    d.disconnect();
  });
});
