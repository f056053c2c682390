/**
 * The redis-scan-source node: copies a source Redis that refuses replication (SCAN + DUMP,
 * then keyspace notifications) and sends the same batches of operations as the replica
 * source (see lib/scan/source.ts for the engine, lib/ops/operation.ts for the message).
 */
import { join } from 'node:path';
import { validateEndpointConfig, type EndpointHandle } from '../../lib/endpoint';
import { FlowControl, type FlowFault } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import type { ReplicationError } from '../../lib/replication/errors';
import type { ReplPosition } from '../../lib/replication/link';
import type { SyncMode } from '../../lib/replication/session';
import { ScanSource, type ScanSourceProgress } from '../../lib/scan/source';
import { sinkDeployed } from '../deployed-flow';
import { failureStatus, NodeFault, shortCount as short, type NodeMessage, type NodeRedApi as Api, type OpsMessage, type RuntimeNode, type NodeStatus } from '../node-red';

type NodeRedNode = RuntimeNode<NodeMessage>;
type NodeRedApi = Api<ScanSourceDef, NodeRedNode>;

interface ScanSourceDef {
  id: string;
  name?: string;
  endpoint: string;
  mode?: SyncMode;
  startOn?: 'deploy' | 'input';
  shards?: string;
  scanCount?: string | number;
  bigKeyMb?: string | number;
  setKeyspaceEvents?: boolean;
  stateDir?: string;
}

const MB = 1024 * 1024;

function num(v: string | number | undefined, fallback: number): number {
  const n = typeof v === 'number' ? v : Number(String(v ?? '').trim());
  return String(v ?? '').trim() !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

export = function register(RED: NodeRedApi): void {
  function RedisScanSourceNode(this: NodeRedNode, def: ScanSourceDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: ScanSourceDef): void {
    const t = (key: string, vars?: Record<string, string | number>): string => RED._(`redis-scan-source.${key}`, vars);
    const endpoint = RED.nodes.getNode(def.endpoint) as (EndpointHandle & { id: string }) | null;
    const workDir = def.stateDir?.trim() || join(RED.settings.userDir ?? process.cwd(), 'redis-sync', def.id);
    const flow = FlowControl.for(def.id);
    let source: ScanSource | null = null;
    let progressTimer: NodeJS.Timeout | null = null;
    let startMsg: NodeMessage = {};
    let stopping: Promise<void> | null = null;
    let faultSaid: FlowFault | null = null;

    const status = (s: NodeStatus): void => node.status(s);
    status({ fill: 'grey', shape: 'ring', text: t('status.idle') });
    const lagText = (ms: number): string => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);

    function statusText(p: ScanSourceProgress): NodeStatus {
      const pct = p.expectedKeys > 0 ? ` ~${Math.min(99, Math.floor((100 * p.scanned) / p.expectedKeys))}%` : '';
      switch (p.phase) {
        case 'snapshot':
          return { fill: 'blue', shape: 'dot', text: t('status.full', { pct, keys: short(p.scanned) }) };
        case 'rescan':
          return { fill: 'blue', shape: 'ring', text: t('status.rescan', { pct, keys: short(p.scanned) }) };
        case 'streaming': {
          const fault = flow.fault;
          if (fault !== null && sinkDeployed(RED)) return { fill: 'red', shape: 'ring', text: t(fault.kind === 'failed' ? 'status.sinkFailed' : 'status.sinkGone', { lag: lagText(p.lagMs) }) };
          return { fill: 'green', shape: 'dot', text: t('status.live', { lag: lagText(p.lagMs) }) };
        }
        case 'reconnecting':
          return { fill: 'yellow', shape: 'ring', text: t('status.reconnecting', { n: p.reconnects }) };
        case 'done':
          return { fill: 'green', shape: 'ring', text: t('status.done', { keys: short(p.scanned) }) };
        case 'starting':
          return { fill: 'yellow', shape: 'ring', text: t('status.connecting') };
        default:
          return { fill: 'grey', shape: 'ring', text: t('status.stopped') };
      }
    }

    function report(): void {
      if (!source) return;
      const p = source.progress;
      if (p.phase !== 'failed') status(statusText(p));
      const fault = flow.fault;
      if (fault?.kind === 'gone' && fault !== faultSaid) {
        faultSaid = fault;
        const text = t('errors.sinkGone', { sink: fault.sink });
        node.error(text, { ...startMsg, error: { message: text } });
      }
      const sink = { deployed: sinkDeployed(RED), attached: flow.attached, fault };
      node.send([null, { topic: 'redis-sync/progress', payload: { source: def.id, kind: 'scan', ...p, sink, at: Date.now() } }]);
    }

    function fail(err: Error): void {
      const off = (err as ReplicationError).code === 'NOTIFY';
      status(off ? { fill: 'red', shape: 'dot', text: t('status.notificationsOff') } : failureStatus(t('status.failed'), err, (cause) => t(`status.cause.${cause}`)));
      node.error(t('errors.failed', { error: err.message }), { ...startMsg, error: { message: err.message } });
    }

    async function start(msg: NodeMessage): Promise<void> {
      if (source) return;
      if (!endpoint) throw new NodeFault('CONFIG', t('errors.noEndpoint'));
      const problems = validateEndpointConfig(endpoint.config);
      if (problems.length > 0) throw new NodeFault('CONFIG', t('errors.invalidEndpoint', { problems: problems.join('; ') }));
      startMsg = msg;
      stopping = null;
      flow.reset();
      const s = new ScanSource({
        endpoint: endpoint.config,
        mode: def.mode ?? 'full+incremental',
        shards: def.shards?.trim() || 'all',
        dir: workDir,
        scanCount: num(def.scanCount, 1000),
        bigKeyBytes: num(def.bigKeyMb, 1) * MB,
        setKeyspaceEvents: def.setKeyspaceEvents === true,
        onBatch: async (ops: Operation[], shard: string, position: ReplPosition) => {
          const seq = await flow.acquire(shard, position);
          const batch: OpsMessage = { topic: 'redis-sync/ops', payload: ops, redisSync: { source: def.id, shard, seq } };
          node.send([batch, null]);
        },
        confirmedOnly: () => sinkDeployed(RED),
      });
      flow.onApplied = (shard, position) => s.confirm(shard, position as ReplPosition);
      source = s;
      let lastReason = '';
      const say = (text: string, reason: string): void => {
        if (reason === lastReason) return node.warn(text);
        lastReason = reason;
        node.error(text, { ...startMsg, error: { message: text } });
      };
      s.on('retry', (shard: string, err: ReplicationError, delay: number) => {
        say(t('log.retry', { shard, error: err.message, delay }), err.message);
        report();
      });
      s.on('rescan', (shard: string, reason: string) => node.warn(t('log.rescan', { shard, reason })));
      s.on('warning', (text: string) => node.warn(text));
      s.on('topology-error', (err: Error) => node.warn(t('log.topology', { error: err.message })));
      s.on('phase', () => report());
      s.on('end', (err: Error | null) => {
        report();
        if (err) fail(err);
        source = null;
        if (progressTimer) clearInterval(progressTimer);
      });
      progressTimer = setInterval(report, 1000);
      status({ fill: 'yellow', shape: 'ring', text: t('status.connecting') });
      try {
        await s.start();
      } catch (err) {
        source = null;
        if (progressTimer) clearInterval(progressTimer);
        await s.stop();
        throw err;
      }
    }

    function stop(): Promise<void> {
      stopping ??= (async () => {
        if (progressTimer) clearInterval(progressTimer);
        const s = source;
        source = null;
        if (s) await s.stop();
        status({ fill: 'grey', shape: 'ring', text: t('status.stopped') });
      })();
      return stopping;
    }

    node.on('input', (msg, _send, done) => {
      const command = typeof msg.payload === 'string' ? msg.payload.toLowerCase() : typeof msg.topic === 'string' ? msg.topic.toLowerCase() : '';
      if (command === 'stop') {
        stop().then(() => done(), done);
        return;
      }
      start(msg).then(
        () => done(),
        (err: Error) => {
          fail(err);
          done(err);
        },
      );
    });

    node.on('close', (_removed, done) => {
      FlowControl.drop(def.id);
      stop().then(done, (err: Error) => {
        node.error(err.message);
        done();
      });
    });

    if ((def.startOn ?? 'deploy') === 'deploy') setImmediate(() => start({}).catch((err: Error) => fail(err)));
  }

  RED.nodes.registerType('redis-scan-source', RedisScanSourceNode);
};
