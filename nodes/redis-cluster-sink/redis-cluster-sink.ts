/**
 * The redis-cluster-sink node: applies batches of operations to a standalone or cluster
 * destination, in order, exactly once (lib/sink/writer.ts), and acknowledges each batch to
 * its source (lib/ops/flow-control.ts) so the source only saves positions that were applied.
 */
import type { EndpointHandle, EndpointUser } from '../../lib/endpoint';
import { acknowledgePart, type PartInfo } from '../../lib/cluster/parts';
import { FlowControl } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import { DestinationWriter, type ConflictPolicy } from '../../lib/sink/writer';
import { shortCount as short, type NodeMessage as BaseMessage, type NodeRedApi as Api, type RuntimeNode } from '../node-red';

type NodeMessage = BaseMessage & { redisSync?: PartInfo };
type NodeRedNode = RuntimeNode<NodeMessage> & EndpointUser;
type NodeRedApi = Api<SinkDef, NodeRedNode>;

interface SinkDef {
  id: string;
  name?: string;
  endpoint: string;
  conflict?: ConflictPolicy;
  exactlyOnce?: boolean;
  restoreMaxMb?: string | number;
}

export = function register(RED: NodeRedApi): void {
  function RedisClusterSinkNode(this: NodeRedNode, def: SinkDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: SinkDef): void {
    const endpoint = RED.nodes.getNode(def.endpoint) as EndpointHandle | null;
    const restoreMaxMb = Number(def.restoreMaxMb);
    let writer: DestinationWriter | null = null;
    let connecting: Promise<DestinationWriter> | null = null;
    /** Batches are applied one after another, in arrival order. */
    let queue: Promise<void> = Promise.resolve();
    let applied = 0;
    const sources = new Set<string>();
    let failed: Error | null = null;

    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-cluster-sink.status.idle') });

    function getWriter(): Promise<DestinationWriter> {
      if (writer) return Promise.resolve(writer);
      connecting ??= (async () => {
        if (!endpoint) throw new Error(RED._('redis-cluster-sink.errors.noEndpoint'));
        const w = new DestinationWriter({
          endpoint: endpoint.config,
          conflict: def.conflict ?? 'ignore',
          exactlyOnce: def.exactlyOnce !== false,
          restoreMaxBytes: Number.isFinite(restoreMaxMb) && restoreMaxMb > 0 ? restoreMaxMb * 1024 * 1024 : undefined,
        });
        try {
          await w.connect();
        } catch (err) {
          w.close();
          throw err;
        }
        writer = w;
        return w;
      })().finally(() => {
        connecting = null;
      });
      return connecting;
    }

    async function handle(msg: NodeMessage): Promise<void> {
      const ops = msg.payload;
      if (!Array.isArray(ops)) throw new Error(RED._('redis-cluster-sink.errors.notOps'));
      const meta = msg.redisSync ?? {};
      if (meta.source !== undefined && !sources.has(meta.source)) {
        sources.add(meta.source);
        FlowControl.for(meta.source).attach(def.id);
      }
      const w = await getWriter();
      await w.apply(ops as Operation[], { source: meta.source ?? 'unknown' });
      applied += ops.length;
      // a batch a slot router split into parts is acknowledged once all parts are applied
      acknowledgePart(meta);
      node.status({ fill: 'green', shape: 'dot', text: RED._('redis-cluster-sink.status.applied', { n: short(applied) }) });
    }

    node.on('input', (msg, send, done) => {
      // after a failure nothing more is applied (later batches depend on it): it was reported once
      if (failed) return done();
      queue = queue.then(() =>
        failed
          ? done()
          : handle(msg).then(
            () => {
              send({ ...msg, payload: { applied: Array.isArray(msg.payload) ? msg.payload.length : 0, total: applied, stats: writer?.stats } });
              done();
            },
            (err: Error) => {
              // stop here: later batches depend on this one; the source waits, nothing is lost
              failed = err;
              node.status({ fill: 'red', shape: 'dot', text: err.message.slice(0, 60) });
              done(err);
            },
          ),
      );
    });

    node.on('close', (_removed, done) => {
      for (const s of sources) FlowControl.for(s).detach(def.id);
      void queue.finally(() => {
        writer?.close();
        done();
      });
    });
  }

  RED.nodes.registerType('redis-cluster-sink', RedisClusterSinkNode);
};
