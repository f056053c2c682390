/**
 * The redis-replica-source node: replicates a source Redis (standalone or cluster) as a
 * replica does and sends the full data set, then every write, as batches of operations
 * (see lib/replication/source.ts for the engine, lib/ops/operation.ts for the message).
 */
import { join } from 'node:path';
import { validateEndpointConfig, type EndpointHandle } from '../../lib/endpoint';
import { FlowControl, type FlowFault } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import type { ReplicationError } from '../../lib/replication/errors';
import type { ReplPosition } from '../../lib/replication/link';
import type { SyncMode } from '../../lib/replication/session';
import { ReplicaSource, type SourceProgress } from '../../lib/replication/source';
import { sinkDeployed } from '../deployed-flow';
import { failureStatus, NodeFault, shortCount as short, type ReplicaSourceHandle, type NodeMessage, type NodeRedApi as Api, type OpsMessage, type RuntimeNode, type NodeStatus } from '../node-red';

type NodeRedNode = RuntimeNode<NodeMessage> & { replicaSource?: ReplicaSourceHandle };
type NodeRedApi = Api<SourceDef, NodeRedNode>;

interface SourceDef {
  id: string;
  name?: string;
  endpoint: string;
  mode?: SyncMode;
  startOn?: 'deploy' | 'input';
  shards?: string;
  preferReplica?: boolean;
  decodeValues?: boolean;
  batchOps?: string | number;
  batchLatencyMs?: string | number;
  bigKeyMb?: string | number;
  spoolDir?: string;
  spoolMaxMb?: string | number;
  psyncCommand?: string;
  syncCommand?: string;
}

const MB = 1024 * 1024;

/** Retried faults that have a status of their own (`status.<key>`); the others show "reconnecting". */
const RETRIED: Readonly<Record<string, string>> = { CONNECT: 'unreachable', LOADING: 'loading', NOMASTERLINK: 'masterLinkDown', SYNC_FAILED: 'bgsaveFailed' };

/** A number from the edit dialog; empty, negative or 0 (unless allowed) gives the default. */
function num(v: string | number | undefined, fallback: number, zeroAllowed = false): number {
  const n = typeof v === 'number' ? v : Number(String(v ?? '').trim());
  if (String(v ?? '').trim() === '') return fallback;
  return Number.isFinite(n) && (n > 0 || (zeroAllowed && n === 0)) ? n : fallback;
}

export = function register(RED: NodeRedApi): void {
  function RedisReplicaSourceNode(this: NodeRedNode, def: SourceDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: SourceDef): void {
    const endpoint = RED.nodes.getNode(def.endpoint) as (EndpointHandle & { id: string }) | null;
    const workDir = def.spoolDir?.trim() || join(RED.settings.userDir ?? process.cwd(), 'redis-sync', def.id);
    const flow = FlowControl.for(def.id);
    let source: ReplicaSource | null = null;
    let progressTimer: NodeJS.Timeout | null = null;
    let startMsg: NodeMessage = {};
    let stopping: Promise<void> | null = null;
    /** Faults retried since the start, and the code of the last: the yellow status names it. */
    let retries = 0;
    let retryCode = '';

    const status = (s: NodeStatus): void => node.status(s);
    if (endpoint) {
      node.replicaSource = { endpoint: endpoint.config, progress: () => source?.progress ?? null, sinkDeployed: () => sinkDeployed(RED), fault: () => flow.fault };
    }
    status({ fill: 'grey', shape: 'ring', text: RED._('redis-replica-source.status.idle') });

    const lagText = (ms: number): string => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);

    /** What keeps the stream from being applied, for the status; null while nothing does. */
    function sinkProblem(p: SourceProgress): NodeStatus | null {
      if (p.caughtUp || !sinkDeployed(RED)) return null;
      const fault = flow.fault;
      const lag = lagText(p.lagMs);
      if (fault?.kind === 'failed') return { fill: 'red', shape: 'ring', text: RED._('redis-replica-source.status.sinkFailed', { lag }) };
      if (fault?.kind === 'gone') return { fill: 'red', shape: 'ring', text: RED._('redis-replica-source.status.sinkGone', { lag }) };
      if (!flow.attached) return { fill: 'yellow', shape: 'ring', text: RED._('redis-replica-source.status.noSink', { lag }) };
      return null;
    }

    function statusText(p: SourceProgress): NodeStatus {
      switch (p.phase) {
        case 'snapshot': {
          // a diskless transfer's percent counts keys against INFO keyspace at the start: an estimate
          const pct = p.snapshot.percent === null ? '' : ` ${p.snapshot.estimated ? '~' : ''}${Math.floor(p.snapshot.percent)}%`;
          return { fill: 'blue', shape: 'dot', text: RED._('redis-replica-source.status.full', { pct, keys: short(p.snapshot.keys) }) };
        }
        case 'streaming':
          // green says the stream is being applied: not while a sink failed or is gone, or none took it yet
          return sinkProblem(p) ?? { fill: 'green', shape: 'dot', text: RED._('redis-replica-source.status.streaming', { lag: lagText(p.lagMs) }) };
        case 'reconnecting':
          return { fill: 'yellow', shape: 'ring', text: RED._(`redis-replica-source.status.${RETRIED[retryCode] ?? 'reconnecting'}`, { n: p.reconnects }) };
        case 'done':
          return { fill: 'green', shape: 'ring', text: RED._('redis-replica-source.status.done', { keys: short(p.snapshot.keys) }) };
        case 'starting':
          // a cluster source's masters are not known yet: its seeds are asked again and again
          if (retries > 0) return { fill: 'yellow', shape: 'ring', text: RED._(`redis-replica-source.status.${RETRIED[retryCode] ?? 'reconnecting'}`, { n: retries }) };
          return { fill: 'yellow', shape: 'ring', text: RED._(p.waitingForMaster ? 'redis-replica-source.status.waitingForMaster' : 'redis-replica-source.status.connecting') };
        default:
          return { fill: 'grey', shape: 'ring', text: RED._('redis-replica-source.status.stopped') };
      }
    }

    /** The fault already said in the log and to Catch nodes, so it is said once. */
    let faultSaid: FlowFault | null = null;

    function report(): void {
      if (!source) return;
      const p = source.progress;
      // a failed source's status names its failure (fail)
      if (p.phase !== 'failed') status(statusText(p));
      const fault = flow.fault;
      if (fault?.kind === 'gone' && fault !== faultSaid) {
        faultSaid = fault;
        const text = RED._('redis-replica-source.errors.sinkGone', { sink: fault.sink });
        node.error(text, { ...startMsg, error: { message: text } });
      }
      const sink = { deployed: sinkDeployed(RED), attached: flow.attached, fault };
      node.send([null, { topic: 'redis-sync/progress', payload: { source: def.id, ...p, sink, at: Date.now() } }]);
    }

    function fail(err: Error): void {
      status(failureStatus(RED._('redis-replica-source.status.failed'), err, (cause) => RED._(`redis-replica-source.status.cause.${cause}`)));
      node.error(RED._('redis-replica-source.errors.failed', { error: err.message }), { ...startMsg, error: { message: err.message } });
    }

    async function start(msg: NodeMessage): Promise<void> {
      if (source) return;
      if (!endpoint) throw new NodeFault('CONFIG', RED._('redis-replica-source.errors.noEndpoint'));
      const problems = validateEndpointConfig(endpoint.config);
      if (problems.length > 0) throw new NodeFault('CONFIG', RED._('redis-replica-source.errors.invalidEndpoint', { problems: problems.join('; ') }));
      startMsg = msg;
      stopping = null;
      // a new run replays from the last applied position: what the last one handed on is forgotten
      flow.reset();
      const s = new ReplicaSource({
        endpoint: endpoint.config,
        mode: def.mode ?? 'full+incremental',
        shards: def.shards?.trim() || 'all',
        preferReplica: def.preferReplica === true,
        dir: workDir,
        decodeValues: def.decodeValues === true,
        bigKeyBytes: num(def.bigKeyMb, 1) * MB,
        batchOps: num(def.batchOps, 1000),
        batchLatencyMs: num(def.batchLatencyMs, 20, true),
        spoolMaxBytes: num(def.spoolMaxMb, 4096) * MB,
        psyncCommand: def.psyncCommand,
        syncCommand: def.syncCommand,
        onBatch: async (ops: Operation[], shard: string, position: ReplPosition | null) => {
          const seq = await flow.acquire(shard, position);
          const batch: OpsMessage = { topic: 'redis-sync/ops', payload: ops, redisSync: { source: def.id, shard, seq } };
          node.send([batch, null]);
        },
        onPassed: (shard, position) => flow.pass(shard, position),
        // where a sink may consume the stream, only what a sink applied is a safe resume point,
        // from the first batch on: see sinkDeployed
        confirmedOnly: () => sinkDeployed(RED),
      });
      flow.onApplied = (shard, position) => void s.confirm(shard, position as ReplPosition);
      source = s;
      retries = 0;
      // Retried faults go to Catch nodes too (once per new reason), so a flow can alert on them.
      let lastReason = '';
      const retried = (text: string, reason: string): void => {
        if (reason === lastReason) return node.warn(text);
        lastReason = reason;
        node.error(text, { ...startMsg, error: { message: text } });
      };
      s.on('retry', (shard: string, err: ReplicationError, delay: number) => {
        retries++;
        retryCode = err.code;
        retried(RED._('redis-replica-source.log.retry', { shard, error: err.message, delay }), err.message);
        report();
      });
      s.on('full-resync', (shard: string, reason: string) => retried(RED._('redis-replica-source.log.fullResync', { shard, reason }), reason));
      s.on('end', (err: Error | null) => {
        report();
        if (err) fail(err);
        source = null;
        if (progressTimer) clearInterval(progressTimer);
      });
      progressTimer = setInterval(report, 1000);
      status({ fill: 'yellow', shape: 'ring', text: RED._('redis-replica-source.status.connecting') });
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
        status({ fill: 'grey', shape: 'ring', text: RED._('redis-replica-source.status.stopped') });
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

    if ((def.startOn ?? 'deploy') === 'deploy') {
      // after the constructor, so the flow's other nodes (sinks) exist when batches flow
      setImmediate(() => start({}).catch((err: Error) => fail(err)));
    }
  }

  RED.nodes.registerType('redis-replica-source', RedisReplicaSourceNode);
};
