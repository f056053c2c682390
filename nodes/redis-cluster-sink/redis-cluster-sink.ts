/**
 * The redis-cluster-sink node: applies batches of operations to a standalone or cluster
 * destination, in order, exactly once (lib/sink/writer.ts), and acknowledges each batch to
 * its source (lib/ops/flow-control.ts) so the source only saves positions that were applied.
 */
import { validateEndpointConfig, type EndpointHandle } from '../../lib/endpoint';
import { acknowledgePart } from '../../lib/cluster/partition-barrier';
import { FlowControl } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import { DestinationWriter, type ConflictPolicy } from '../../lib/sink/writer';
import { codeOf, failureStatus, NodeFault, shortCount as short, StatusThrottle, type NodeRedApi as Api, type NodeStatus, type OpsMessage, type RuntimeNode } from '../node-red';

type NodeRedNode = RuntimeNode<OpsMessage>;
type NodeRedApi = Api<SinkDef, NodeRedNode>;

/** Within Node-RED's own 15 s limit for a node to close. */
const CLOSE_WAIT_MS = 5000;

interface SinkDef {
  id: string;
  name?: string;
  endpoint: string;
  conflict?: ConflictPolicy;
  exactlyOnce?: boolean;
  restoreMaxMb?: string | number;
  /** Accept a destination whose maxmemory-policy evicts keys; off: the sink refuses it. */
  allowEviction?: boolean;
}

/** Retried faults that have a status of their own (`status.<key>`); the others show "reconnecting". */
const RETRIED: Readonly<Record<string, string>> = { CONNECT: 'unreachable', LOADING: 'loading' };

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
    /**
     * Batches go to the writer in arrival order as they come, without waiting for the one
     * before to be applied (the writer overlaps what is safe to overlap); they are
     * acknowledged and passed on in that same order, once applied.
     */
    let handedIn: Promise<unknown> = Promise.resolve();
    let confirmed: Promise<void> = Promise.resolve();
    let applied = 0;
    const sources = new Set<string>();
    let failed: Error | null = null;
    let closing = false;
    /** Dropped FUNCTION commands are said once per run (the stats count every one). */
    let functionsDropped = false;
    /** Keys the destination evicted since the start: once any, the status stays red with the count. */
    let evicted = 0;
    const failedStatus = (err: unknown): NodeStatus => failureStatus(RED._('redis-cluster-sink.status.failed'), err, (cause) => RED._(`redis-cluster-sink.status.cause.${cause}`));
    const evictedStatus = (): NodeStatus => ({ fill: 'red', shape: 'dot', text: RED._('redis-cluster-sink.status.evicted', { n: short(evicted) }) });

    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-cluster-sink.status.idle') });

    function getWriter(): Promise<DestinationWriter> {
      if (connecting) return connecting;
      if (writer) return Promise.resolve(writer);
      connecting ??= (async () => {
        if (!endpoint) throw new NodeFault('CONFIG', RED._('redis-cluster-sink.errors.noEndpoint'));
        const problems = validateEndpointConfig(endpoint.config);
        if (problems.length > 0) throw new NodeFault('CONFIG', RED._('redis-cluster-sink.errors.invalidEndpoint', { problems: problems.join('; ') }));
        const w = new DestinationWriter({
          endpoint: endpoint.config,
          conflict: def.conflict ?? 'ignore',
          exactlyOnce: def.exactlyOnce !== false,
          restoreMaxBytes: Number.isFinite(restoreMaxMb) && restoreMaxMb > 0 ? restoreMaxMb * 1024 * 1024 : undefined,
          allowEviction: def.allowEviction === true,
          // the writer connects again by itself (the source waits meanwhile): said once per outage
          onReconnect: (cause, attempt) => {
            if (attempt === 1) node.warn(RED._('redis-cluster-sink.log.reconnect', { reason: cause.message }));
            node.status({ fill: 'yellow', shape: 'ring', text: RED._(`redis-cluster-sink.status.${RETRIED[codeOf(cause)] ?? 'reconnecting'}`, { n: attempt }) });
          },
          // lost data is an error even where the user allowed eviction: said once, counted on in the status
          onEvicted: (n, detail) => {
            const first = evicted === 0;
            evicted = n;
            if (!failed) node.status(evictedStatus());
            if (first) node.error(RED._('redis-cluster-sink.errors.evicted', { n, detail }), {});
          },
          onEvictionUnchecked: (what) => node.warn(what),
          // said once per label by the writer (what, and what to do); counted on in the status
          onDropped: (_label, why) => node.warn(RED._('redis-cluster-sink.log.dropped', { why })),
          onDroppedFunction: (what) => {
            if (functionsDropped) return;
            functionsDropped = true;
            node.warn(RED._('redis-cluster-sink.log.droppedFunction', { what }));
          },
        });
        // set before connecting: a close while it still tries to reach the destination stops it
        writer = w;
        try {
          await w.connect();
        } catch (err) {
          w.close();
          writer = null;
          throw err;
        }
        return w;
      })().finally(() => {
        connecting = null;
      });
      return connecting;
    }

    /** Hands a batch to the writer; resolves once it is handed in, with the promise of its application. */
    async function handIn(msg: OpsMessage): Promise<{ applied: Promise<void> }> {
      const ops = msg.payload;
      if (!Array.isArray(ops)) throw new NodeFault('INPUT', RED._('redis-cluster-sink.errors.notOps'));
      const meta = msg.redisSync ?? {};
      if (meta.source !== undefined && !sources.has(meta.source)) {
        sources.add(meta.source);
        FlowControl.for(meta.source).attach(def.id);
      }
      const w = await getWriter();
      return { applied: w.apply(ops as Operation[], { source: meta.source ?? 'unknown', partition: meta.partition }) };
    }

    /** Green, or yellow once operations were dropped for want of a db on the destination (lib/sink/dbs.ts), by label. */
    function appliedStatus(): NodeStatus {
      const dropped = Object.entries(writer?.stats.dropped ?? {});
      if (dropped.length === 0) return { fill: 'green', shape: 'dot', text: RED._('redis-cluster-sink.status.applied', { n: short(applied) }) };
      const what = dropped.sort((a, b) => b[1] - a[1]).map(([label, n]) => `${short(n)} ${label}`).join(', ');
      return { fill: 'yellow', shape: 'dot', text: RED._('redis-cluster-sink.status.appliedDropped', { n: short(applied), dropped: what }) };
    }

    const appliedShown = new StatusThrottle(250, () => {
      if (!failed) node.status(evicted > 0 ? evictedStatus() : appliedStatus());
    });

    node.on('input', (msg, send, done) => {
      // after a failure nothing more is applied (later batches depend on it): it was reported once
      if (failed) {
        // a source whose first batch comes after the failure (one at deploy) learns of it too
        const source = msg.redisSync?.source;
        if (source !== undefined && !sources.has(source)) {
          sources.add(source);
          FlowControl.for(source).fail(def.id, failed.message);
        }
        return done();
      }
      const turn = handedIn.then(() => handIn(msg));
      handedIn = turn.catch(() => undefined);
      confirmed = confirmed
        .then(() => turn)
        .then((t) => t.applied)
        .then(
          () => {
            const n = Array.isArray(msg.payload) ? msg.payload.length : 0;
            applied += n;
            // a batch a slot router split into parts is acknowledged once all parts are applied
            acknowledgePart(msg.redisSync ?? {});
            appliedShown.changed();
            send({ ...msg, payload: { applied: n, total: applied, stats: writer?.stats } });
            done();
          },
          (err: Error) => {
            // a batch cut off by the node closing is not acknowledged: the source sends it again
            if (failed || closing) return done();
            // stop here: later batches depend on this one; the source waits, nothing is lost
            failed = err;
            // its sources must not show their stream as being applied (see FlowControl.fault)
            for (const s of sources) FlowControl.for(s).fail(def.id, err.message);
            node.status(failedStatus(err));
            done(err);
          },
        );
    });

    // The destination is reached at deploy, not with the first batch: refused credentials, a TLS
    // mismatch or an evicting destination show at once, also when the source has nothing to send.
    setImmediate(() => {
      getWriter().catch((err: Error) => {
        if (failed || closing) return;
        failed = err;
        node.status(failedStatus(err));
        node.error(err.message, {});
      });
    });

    // On close, the batches in flight get a few seconds to be applied; a destination that does
    // not answer by then has them cut off (unacknowledged, so the source replays them).
    node.on('close', (_removed, done) => {
      for (const s of sources) FlowControl.for(s).detach(def.id);
      let timer: NodeJS.Timeout | undefined;
      const cutOff = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
      void Promise.race([confirmed, cutOff]).then(() => {
        closing = true;
        clearTimeout(timer);
        appliedShown.close();
        writer?.close();
        done();
      });
    });
  }

  RED.nodes.registerType('redis-cluster-sink', RedisClusterSinkNode);
};
