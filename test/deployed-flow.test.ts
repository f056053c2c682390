import assert from 'node:assert/strict';
import { sinkDeployed, sinkWiredBehind } from '../nodes/deployed-flow';
import type { NodeRedApi } from '../nodes/node-red';
import { builtNode, coreNodes, loadFlow, startNodeRed, stopNodeRed, unloadFlow, type FlowNode, type NodeModule } from './support/node-red';

type Red = NodeRedApi<unknown, unknown>;

/** The RED object a node module is given by the runtime under test: what the router asks. */
let red: Red | null = null;
const capture: NodeModule = (RED) => {
  red = RED as unknown as Red;
};

const deployed = async (flow: FlowNode[]): Promise<Red> => {
  await loadFlow([capture, builtNode('redis-cluster-sink'), ...coreNodes('function/10-function.js', 'function/15-change.js', 'common/60-link.js', 'common/05-junction.js')], flow);
  return red as Red;
};

/** A router stand-in (a function node: the walk does not care what the start is) with its outputs wired to `wires`. */
const router = (...wires: string[][]): FlowNode => ({ id: 'router', type: 'function', z: 'tab', func: 'return msg;', outputs: wires.length, wires });
const fn = (id: string, wires: string[][], z = 'tab'): FlowNode => ({ id, type: 'function', z, func: 'return msg;', outputs: wires.length, wires });
// no endpoint: the sink stops at once on its configuration, without reaching for a server
const sink = (id = 'sink', z = 'tab'): FlowNode => ({ id, type: 'redis-cluster-sink', z, endpoint: '', wires: [[]] });
const debug = (id: string, z = 'tab'): FlowNode => ({ id, type: 'helper', z });
const tab = (id = 'tab', disabled = false): FlowNode => ({ id, type: 'tab', disabled });

describe('the deployed flow: which sinks the slot router feeds', function () {
  this.timeout(20_000);
  before(startNodeRed);
  after(stopNodeRed);
  afterEach(unloadFlow);

  it('finds a sink behind function, change and junction nodes, on any output', async () => {
    const n = await deployed([
      tab(),
      router(['d0'], ['f1']),
      debug('d0'),
      fn('f1', [['c1']]),
      { id: 'c1', type: 'change', z: 'tab', rules: [], wires: [['j1']] },
      { id: 'j1', type: 'junction', z: 'tab', wires: [['sink']] },
      sink(),
    ]);
    assert.equal(sinkWiredBehind(n, 'router'), true);
  });

  it('finds none behind debug nodes only, even with a sink elsewhere in the flow (which sinkDeployed sees)', async () => {
    const n = await deployed([tab(), tab('other'), router(['d0'], ['d1']), debug('d0'), debug('d1'), sink('sink', 'other'), fn('feeder', [['sink']], 'other')]);
    assert.equal(sinkWiredBehind(n, 'router'), false);
    assert.equal(sinkDeployed(n), true);
  });

  it('follows link out to link in (declared on either side), and a link call to its target and on along its own wires', async () => {
    const viaLinks = await deployed([
      tab(),
      router(['out']),
      { id: 'out', type: 'link out', z: 'tab', mode: 'link', links: [] },
      { id: 'in', type: 'link in', z: 'tab', links: ['out'], wires: [['sink']] },
      sink(),
    ]);
    assert.equal(sinkWiredBehind(viaLinks, 'router'), true);
    await unloadFlow();

    const viaCall = await deployed([
      tab(),
      router(['call']),
      { id: 'call', type: 'link call', z: 'tab', links: ['in'], linkType: 'static', timeout: '30', wires: [['sink']] },
      { id: 'in', type: 'link in', z: 'tab', links: [], wires: [['ret']] },
      { id: 'ret', type: 'link out', z: 'tab', mode: 'return', links: [] },
      sink(),
    ]);
    assert.equal(sinkWiredBehind(viaCall, 'router'), true);
  });

  it('enters subflow instances, and comes out along their wires', async () => {
    const template = { id: 'sf', type: 'subflow', name: 'sf', in: [{ wires: [{ id: 'inner' }] }], out: [{ wires: [{ id: 'inner', port: 0 }] }] };
    const inside = await deployed([tab(), template, fn('inner', [[]], 'sf'), sink('innerSink', 'sf'), router(['inst']), { id: 'inst', type: 'subflow:sf', z: 'tab', wires: [['d0']] }, debug('d0')]);
    assert.equal(sinkWiredBehind(inside, 'router'), true, 'a sink inside the subflow');
    await unloadFlow();

    const after = await deployed([tab(), template, fn('inner', [[]], 'sf'), router(['inst']), { id: 'inst', type: 'subflow:sf', z: 'tab', wires: [['sink']] }, sink()]);
    assert.equal(sinkWiredBehind(after, 'router'), true, 'a sink behind the subflow');
  });

  it('does not pass disabled nodes, nor count sinks that are disabled or on a disabled tab', async () => {
    const n = await deployed([tab(), tab('off', true), router(['f1']), { ...fn('f1', [['sink']]), d: true }, sink(), { ...sink('disabled'), d: true }, sink('onDisabledTab', 'off')]);
    assert.equal(sinkWiredBehind(n, 'router'), false);
    await unloadFlow();
    const none = await deployed([tab(), tab('off', true), router([]), { ...sink('disabled'), d: true }, sink('onDisabledTab', 'off')]);
    assert.equal(sinkDeployed(none), false);
  });

  it('does not know a node that is not in the deployed configuration', async () => {
    const n = await deployed([tab(), router([])]);
    assert.equal(sinkWiredBehind(n, 'no-such-node'), null);
  });
});
