import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFilterSettings, type OpFilterText } from '../lib/ops/filter-config';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { startRedis } from './harness';
import {
  builtNode,
  coreNodes,
  editorDefinition,
  getNode,
  loadFlow,
  startNodeRed,
  stopNodeRed,
  unloadFlow,
  waitFor,
  type EditorDefinition,
  type FlowNode,
  type HelperMessage,
  type NodeModule,
  type NodeUnderTest,
  received,
  statusesOf,
  testFlow,
} from './support/node-red';

const cmd = (name: string, args: string[], keys: number[], o: Partial<CommandOp> = {}): CommandOp => ({
  kind: 'command', db: 0, name, args: args.map((a) => Buffer.from(a)), keys, shard: 'standalone', offset: 10, tx: 0, ...o,
});
const show = (op: Operation): string =>
  op.kind === 'command' ? [`${op.db}:${op.name}`, ...op.args.map((a) => a.toString())].join(' ') : op.kind === 'key' ? `${op.db}:key ${op.key.toString()}` : op.kind;

const flow = (filter: Partial<FlowNode>): FlowNode[] =>
  testFlow([{ id: 'f', type: 'redis-op-filter', z: 'tab', wires: [['kept'], ['dropped']], ...filter }], ['kept', 'dropped']);

const collect = (): { kept: HelperMessage[]; dropped: HelperMessage[]; caught: HelperMessage[]; statuses: string[] } =>
  ({ kept: received('kept'), dropped: received('dropped'), caught: received('caught'), statuses: statusesOf('f') });

const nodes = (): NodeModule[] => [builtNode('redis-op-filter'), ...coreNodes('common/25-catch.js')];
const meta = { source: 'src-1', shard: 'standalone', seq: 7 };

describe('redis-op-filter node in a Node-RED runtime', function () {
  this.timeout(60_000);
  before(startNodeRed);
  after(stopNodeRed);
  afterEach(unloadFlow);

  it('filters a batch: kept operations on the first output in the same message, dropped ones on the second', async () => {
    await loadFlow(nodes(), flow({ remap: '0:3', excludeKeys: 'prefix:tmp:', droppedOutput: true, outputs: 2 }));
    const got = collect();
    const ops = [cmd('SET', ['a', '1'], [0]), cmd('SET', ['tmp:a', '1'], [0]), cmd('DEL', ['b', 'tmp:b'], [0, 1])];
    getNode<NodeUnderTest>('f').receive({ topic: 'redis-sync/ops', payload: ops, redisSync: meta });
    await waitFor(() => got.kept.length === 1 && got.dropped.length === 1, 5000, 'both outputs');
    assert.deepEqual((got.kept[0].payload as Operation[]).map(show), ['3:SET a 1', '3:DEL b']);
    assert.deepEqual(got.kept[0].redisSync, meta, 'the batch keeps its origin: the sink acknowledges it to the source');
    assert.equal(got.kept[0].topic, 'redis-sync/ops');
    assert.deepEqual((got.dropped[0].payload as Operation[]).map(show), ['0:SET tmp:a 1', '0:DEL tmp:b']);
    assert.deepEqual(got.dropped[0].redisSync, { shard: 'standalone', seq: 7 }, 'no source: nothing acknowledges the dropped half');
    await waitFor(() => got.statuses.includes('green:kept 2, -2'), 3000, 'the counts in the status');
  });

  it('sends a batch that keeps nothing as an empty batch (the source waits for its acknowledgement), and nothing on the second output when nothing is dropped', async () => {
    await loadFlow(nodes(), flow({ excludeKeys: 'glob:tmp:*', droppedOutput: true, outputs: 2 }));
    const got = collect();
    getNode<NodeUnderTest>('f').receive({ payload: [cmd('SET', ['tmp:a', '1'], [0])], redisSync: meta });
    getNode<NodeUnderTest>('f').receive({ payload: [cmd('SET', ['a', '1'], [0])], redisSync: meta });
    await waitFor(() => got.kept.length === 2, 5000, 'two batches');
    assert.deepEqual(got.kept[0].payload, []);
    assert.equal(got.dropped.length, 1);
  });

  it('a command it drops although what it keeps changes: yellow status with the count, one warning that says what happened', async () => {
    await loadFlow(nodes(), flow({ allDbsToZero: true, keyPrefix: 'db{db}:', wires: [['kept']] }));
    const got = collect();
    const node = getNode<{ warn: (m: unknown) => void }>('f');
    const warnings: string[] = [];
    const warn = node.warn.bind(node);
    node.warn = (m) => {
      warnings.push(String(m));
      warn(m);
    };
    const swap = cmd('SWAPDB', ['1', '2'], []);
    getNode<NodeUnderTest>('f').receive({ payload: [cmd('SET', ['a', '1'], [0]), swap, { ...swap, offset: 11 }], redisSync: meta });
    await waitFor(() => got.statuses.includes('yellow:kept 1, -2, lost 2 SWAPDB'), 3000, 'the loss in the status');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /^SWAPDB in db 0 at source offset 10 is dropped: dbs 1 and 2 both go into db 0, told apart by their key prefixes: .* \(counted in the status/);
  });

  it('with one output, sends only the kept operations', async () => {
    await loadFlow(nodes(), flow({ includeDbs: '1', wires: [['kept']] }));
    const got = collect();
    getNode<NodeUnderTest>('f').receive({ payload: [cmd('SET', ['a', '1'], [0]), cmd('SET', ['b', '1'], [0], { db: 1 })] });
    await waitFor(() => got.kept.length === 1, 5000, 'the batch');
    assert.deepEqual((got.kept[0].payload as Operation[]).map(show), ['1:SET b 1']);
  });

  it('stops at a flush under the "error" policy: red status, the error to Catch nodes, that batch and later ones not sent', async () => {
    await loadFlow(nodes(), flow({ flush: 'error' }));
    const got = collect();
    const f = getNode<NodeUnderTest>('f');
    f.receive({ payload: [cmd('SET', ['a', '1'], [0])] });
    f.receive({ payload: [cmd('SET', ['b', '1'], [0]), cmd('FLUSHALL', [], [], { offset: 4242, db: 2 })] });
    await waitFor(() => got.caught.length === 1, 5000, 'the caught error');
    assert.match(String(got.caught[0].error?.message), /^FilterError: FLUSHALL in db 2 at source offset 4242 \(shard standalone\)/);
    assert.ok(got.statuses.includes('red:stopped at FLUSHALL'), got.statuses.join(', '));
    f.receive({ payload: [cmd('SET', ['c', '1'], [0])] });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.kept.length, 1, 'only the batch before the flush');
    assert.equal(got.caught.length, 1, 'reported once');
  });

  it('refuses a bad configuration: each batch errors with the problems, and none is sent', async () => {
    await loadFlow(nodes(), flow({ excludeKeys: 're:(unclosed', remap: '0:3, 0:4' }));
    const got = collect();
    getNode<NodeUnderTest>('f').receive({ payload: [] });
    getNode<NodeUnderTest>('f').receive({ payload: 'not operations' });
    await waitFor(() => got.caught.length === 2, 5000, 'the caught errors');
    for (const m of got.caught) {
      assert.match(String(m.error?.message), /^Error: op filter configuration: remap: db 0 is mapped twice; excludeKeys\[0\]: Invalid regular expression/);
    }
    assert.equal(got.kept.length, 0);
  });

  it('errors on a message that carries no operations', async () => {
    await loadFlow(nodes(), flow({}));
    const got = collect();
    getNode<NodeUnderTest>('f').receive({ payload: 'start' });
    await waitFor(() => got.caught.length === 1, 5000, 'the caught error');
    assert.equal(got.caught[0].error?.message, 'Error: msg.payload is not an array of operations');
  });

  it('between a live replica source and the flow: snapshot and stream remapped and filtered', async () => {
    const server = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'node-op-filter-'));
    try {
      const c = server.client();
      await c.set('keep', '1');
      await c.set('tmp:x', '1');
      await loadFlow([builtNode('redis-endpoint'), builtNode('redis-replica-source'), ...nodes()], [
        ...flow({ remap: '0:3', excludeKeys: 'prefix:tmp:' }),
        { id: 'ep', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(server.port) },
        { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'ep', spoolDir: dir, batchLatencyMs: 5, wires: [['f'], []] },
      ]);
      const got = collect();
      const ops = (): Operation[] => got.kept.flatMap((m) => m.payload as Operation[]);
      await waitFor(() => ops().some((o) => o.kind === 'snapshot-end'), 10_000, 'the snapshot');
      await c.mset('a', '1', 'tmp:b', '2');
      await waitFor(() => ops().some((o) => o.kind === 'command' && o.name === 'MSET'), 10_000, 'the MSET');
      assert.deepEqual(ops().filter((o): o is KeyOp | CommandOp => o.kind === 'key' || o.kind === 'command').map(show), ['3:key keep', '3:MSET a 1']);
      assert.equal(got.kept[0].redisSync?.source, 'src');
    } finally {
      await unloadFlow();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('redis-op-filter editor', () => {
  let def: EditorDefinition;
  before(() => {
    def = editorDefinition('redis-op-filter');
  });
  const check = (prop: string, value: string, node: Record<string, unknown> = {}): boolean | string => {
    const validate = def.defaults[prop].validate;
    assert.ok(validate, `${prop} has a validator`);
    return validate.call(node, value);
  };

  it('is in the redis sync category, with one output unless dropped operations get their own', () => {
    assert.equal(def.category, 'redis sync');
    assert.equal(def.defaults.outputs.value, 1);
    assert.equal(def.defaults.droppedOutput.value, false);
    assert.equal(def.defaults.preset.value, 'all');
    assert.equal(def.defaults.flush.value, 'apply');
  });

  it('marks bad fields before deploy, with a message', () => {
    assert.equal(check('allow', 'COPY, xadd JSON.SET'), true);
    assert.equal(check('allow', 'SET; DEL'), 'command names, separated by commas or spaces');
    assert.equal(check('deny', 'MULTI'), 'MULTI cannot be denied (flush policy / transaction rule)');
    assert.equal(check('allow', 'FLUSHALL', { flush: 'drop' }), 'FLUSHALL follows the FLUSHALL / FLUSHDB setting');
    assert.equal(check('allow', 'FLUSHALL', { flush: 'apply' }), true);
    assert.equal(check('includeDbs', '0, 2-4'), true);
    assert.equal(check('includeDbs', '4-2'), 'db numbers or ranges like 2-5, separated by commas');
    assert.equal(check('excludeDbs', '3', { includeDbs: '2-4' }), 'db 3 is in both lists');
    assert.equal(check('remap', '0:3, 5:0'), true);
    assert.equal(check('remap', '0:3, 0:4'), 'source:destination pairs like 0:3, each source once');
    assert.equal(check('remap', '0-3'), 'source:destination pairs like 0:3, each source once');
    assert.equal(check('remap', '0:3', { allDbsToZero: true }), 'leave empty when every db goes to db 0');
    assert.equal(check('keyPrefix', 'db{db}:'), '{db} needs "every db to db 0"');
    assert.equal(check('keyPrefix', 'db{db}:', { allDbsToZero: true }), true);
    assert.equal(check('includeKeys', 'prefix:tmp:\n\n# a comment\nglob:a*\nre:^x[0-9]+$'), true);
    assert.equal(check('excludeKeys', 'prefix:tmp:\ntmp:*'), 'line 2: start it with prefix:, glob: or re:');
    assert.equal(check('excludeKeys', 'glob:'), 'line 1: the pattern is empty');
    assert.match(String(check('excludeKeys', 'prefix:a\nre:([a-')), /^line 2: Invalid regular expression/);
  });

  it('agrees with the runtime on what is valid', () => {
    const samples: Array<[keyof OpFilterText, string, Record<string, unknown>]> = [
      ['allow', 'SET DEL', {}], ['allow', 'SET,,DEL', {}], ['allow', 'bad!', {}], ['deny', 'EXEC', {}], ['deny', 'flushdb', {}], ['deny', 'publish', {}],
      ['includeDbs', '1,2,3', {}], ['includeDbs', '1.5', {}], ['includeDbs', '-1', {}], ['excludeDbs', '7', { includeDbs: '7' }], ['excludeDbs', '7', { includeDbs: '1-6' }],
      ['remap', '1:2 3:4', {}], ['remap', '1:2:3', {}], ['remap', 'a:1', {}], ['remap', '1:2', { allDbsToZero: true }],
      ['keyPrefix', 'x{db}', {}], ['keyPrefix', 'x:', {}],
      ['includeKeys', 're:[', {}], ['includeKeys', 're:é+', {}], ['includeKeys', 'regex:\\d', {}], ['includeKeys', 'glob:[', {}], ['includeKeys', 'prefix', {}], ['includeKeys', '  prefix:x  ', {}],
    ];
    for (const [prop, value, others] of samples) {
      const editor = check(prop, value, others) === true;
      const runtime = readFilterSettings({ ...others, [prop]: value }).problems.length === 0;
      assert.equal(editor, runtime, `${prop} = ${JSON.stringify(value)} with ${JSON.stringify(others)}`);
    }
  });
});
