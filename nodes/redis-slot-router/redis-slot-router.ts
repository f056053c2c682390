/**
 * The redis-slot-router node: gives every operation of a batch its hash slot, splits the
 * cross-slot multi-key commands that can be split (lib/cluster/router.ts), and sends each
 * batch on as one message per partition (output), every slot always to the same output.
 *
 * Ordering across outputs. The sinks behind the outputs run independently, so an operation
 * that is not bound to one slot — a keyless command (FLUSHALL, FUNCTION LOAD, PUBLISH …), a
 * SLOT_CROSS command, snapshot-begin or snapshot-end — is a barrier: it must come after
 * everything before it on every partition and before everything after it. A batch holding
 * one is therefore sent only once every batch sent before is applied, all of it on the first
 * output (the others get its snapshot-begin, if any, or an empty message), and the next batch
 * of that source waits until it is applied. Batches without barriers are only split by slot and flow on at once. With one
 * partition there is nothing to order and nothing waits.
 *
 * How the waiting works: a source acquires a place in its flow-control window
 * (lib/ops/flow-control.ts) before it sends a batch, and its sinks acknowledge each batch once
 * applied, so `FlowControl.pending` counts the batches sent and not yet applied. The router
 * knows how many of those it holds itself (received, not sent on): when `pending` is down to
 * that, everything it sent on is applied. It checks again whenever either count changes
 * (FlowControl.changed(), a batch arriving). With no sink attached to the source (a flow that
 * ends in debug nodes) nothing is acknowledged: see ATTACH_GRACE_MS for how long it waits then.
 *
 * Acknowledgements. Every message carries msg.redisSync.{batch, partition, part, parts}
 * besides the source's `source`, `shard` and `seq`; a sink acknowledges a batch to its
 * source once all `parts` messages of it were applied, wherever they went: acknowledgePart()
 * (lib/cluster/parts.ts) does that count for the whole process.
 */
import { FlowControl } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import type { PartInfo } from '../../lib/cluster/parts';
import { SlotRouter } from '../../lib/cluster/router';
import { partitionOf } from '../../lib/cluster/slots';
import { failureStatus, NodeFault, shortCount as short, type NodeMessage as BaseMessage, type NodeRedApi as Api, type RuntimeNode, type Send } from '../node-red';

/**
 * How long a barrier waits for a sink to attach before the router takes it that the flow has
 * none. A sink attaches to a source when the first batch of that source reaches it, so right
 * after the router sent a batch on, no sink may be attached yet although the flow has one (the
 * message is on its way, or in a function node): the barrier must wait for its acknowledgement
 * all the same, or a second partition could apply what follows the barrier first. A flow
 * without any sink (debug nodes only, or outputs left unwired) never acknowledges, and waiting
 * at every barrier would only slow it down, by this grace before and after each barrier batch.
 * So the grace runs once per source: after it ran out with no sink attached, that source's
 * barriers do not wait, until a sink is seen attached to it or a wait ends with everything
 * applied (then the grace is renewed, for sinks deployed anew). The price: a sink whose first
 * batch takes longer than this to reach it may apply its first barrier batch out of order.
 */
const ATTACH_GRACE_MS = 2000;

type NodeMessage = BaseMessage & { redisSync?: PartInfo & Record<string, unknown> };
type NodeRedNode = RuntimeNode<NodeMessage>;
type NodeRedApi = Api<RouterDef, NodeRedNode>;

interface RouterDef {
  id: string;
  name?: string;
  partitions?: string | number;
}

const MAX_PARTITIONS = 16;

/** A promise and its resolve. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The slot the router gave an operation; negative for the barriers (see the file comment). */
function slotOfOp(op: Operation): number {
  return op.kind === 'key' || op.kind === 'command' ? (op.slot ?? -1) : -1;
}

export = function register(RED: NodeRedApi): void {
  function RedisSlotRouterNode(this: NodeRedNode, def: RouterDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: RouterDef): void {
    const n = Number(String(def.partitions ?? 1).trim());
    if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) {
      const text = RED._('redis-slot-router.errors.partitions', { max: MAX_PARTITIONS });
      node.status({ fill: 'red', shape: 'dot', text: RED._('redis-slot-router.status.invalid') });
      node.on('input', (_msg, _send, done) => done(new Error(text)));
      return;
    }
    const router = new SlotRouter();
    /** Per source, the handling of its last message: a source's batches are handled in order. */
    const tails = new Map<string, Promise<void>>();
    /** Per source, batches received and not yet sent on: acquired by the source, so not acknowledged either. */
    const held = new Map<string, number>();
    /** Per source, when its grace for a sink to attach ends or ended (see ATTACH_GRACE_MS). */
    const graceEnds = new Map<string, number>();
    /** Resolved (and replaced) when a batch arrives or the node closes: what a barrier wait checks besides FlowControl. */
    let arrival = signal();
    let seq = 0;
    let closed = false;
    let statusTimer: NodeJS.Timeout | null = null;

    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-slot-router.status.idle') });

    function showStats(): void {
      statusTimer = null;
      if (closed) return;
      const { ops, split, cross } = router.stats;
      const key = cross > 0 ? 'redis-slot-router.status.routedCross' : 'redis-slot-router.status.routed';
      node.status({ fill: 'green', shape: 'dot', text: RED._(key, { ops: short(ops), split: short(split), cross: short(cross) }) });
    }

    // At most two status updates a second: a status per batch would cost more than routing it.
    function scheduleStats(): void {
      statusTimer ??= setTimeout(showStats, 500);
    }

    function hold(source: string, delta: 1 | -1): void {
      const count = (held.get(source) ?? 0) + delta;
      if (count > 0) held.set(source, count);
      else held.delete(source);
      // one more held makes the wait's condition true sooner
      if (delta > 0) wake();
    }

    function wake(): void {
      const woken = arrival;
      arrival = signal();
      woken.resolve();
    }

    /** Until every batch of `source` this router sent on is applied (or the grace says there is no sink). */
    async function settled(source: string): Promise<void> {
      const flow = FlowControl.for(source);
      const applied = (): boolean => flow.pending <= (held.get(source) ?? 0);
      let waiting = false;
      while (!closed && !applied()) {
        const wakeups = [flow.changed(), arrival.promise];
        let timer: NodeJS.Timeout | undefined;
        if (flow.attached) {
          graceEnds.delete(source);
        } else {
          const end = graceEnds.get(source) ?? Date.now() + ATTACH_GRACE_MS;
          graceEnds.set(source, end);
          const left = end - Date.now();
          if (left <= 0) break;
          wakeups.push(new Promise<void>((resolve) => (timer = setTimeout(resolve, left))));
        }
        if (!waiting) {
          waiting = true;
          node.status({ fill: 'yellow', shape: 'ring', text: RED._('redis-slot-router.status.barrier') });
        }
        await Promise.race(wakeups);
        clearTimeout(timer);
      }
      if (!waiting) return;
      // a wait that ended with everything applied had a sink: the grace is renewed for later ones
      if (applied()) graceEnds.delete(source);
      scheduleStats();
    }

    /** Routes one batch and sends it on; `release` ends its holding (called once it is sent, or on failure). */
    async function handle(msg: NodeMessage, send: Send, source: string | undefined, release: () => void): Promise<void> {
      if (!Array.isArray(msg.payload)) throw new NodeFault('INPUT', RED._('redis-slot-router.errors.notBatch'));
      const ops = router.route(msg.payload as Operation[]);
      scheduleStats();
      const parts: Operation[][] = Array.from({ length: n }, () => []);
      const barrier = n > 1 && ops.some((op) => slotOfOp(op) < 0);
      const ordered = barrier && source !== undefined;
      if (barrier) {
        parts[0] = ops;
        // every sink must learn that a full sync begins: each keeps the applied offsets of its
        // slots, which belong to the sync before and must not be compared with the new one's
        // (the sink behind the first output does the rest: see BatchContext.partition)
        const begins = ops.filter((op) => op.kind === 'snapshot-begin');
        for (let i = 1; i < n; i++) parts[i] = begins;
        if (ordered) await settled(source);
      } else {
        for (const op of ops) parts[n === 1 ? 0 : partitionOf(slotOfOp(op), n)].push(op);
      }
      if (closed) return;
      const batch = `${def.id}:${++seq}`;
      const info = msg.redisSync ?? {};
      release();
      // One send per output: Node-RED clones every message of a send but the first, Buffers and all.
      parts.forEach((payload, i) => {
        const out = new Array<NodeMessage | null>(n).fill(null);
        out[i] = { ...msg, payload, redisSync: { ...info, batch, partition: i, part: i, parts: n } };
        send(out);
      });
      if (ordered) await settled(source);
    }

    node.on('input', (msg, send, done) => {
      const source = typeof msg.redisSync?.source === 'string' ? msg.redisSync.source : undefined;
      const key = source ?? '';
      let holding = source !== undefined;
      if (source !== undefined) hold(source, 1);
      const release = (): void => {
        if (holding && source !== undefined) hold(source, -1);
        holding = false;
      };
      const current = (tails.get(key) ?? Promise.resolve())
        .then(() => handle(msg, send, source, release))
        .then(
          () => done(),
          (err: Error) => {
            node.status(failureStatus(RED._('redis-slot-router.status.failed'), err));
            done(err);
          },
        )
        .finally(release);
      tails.set(key, current);
      void current.then(() => {
        if (tails.get(key) === current) tails.delete(key);
      });
    });

    node.on('close', (_removed, done) => {
      closed = true;
      wake();
      if (statusTimer) clearTimeout(statusTimer);
      done();
    });
  }

  RED.nodes.registerType('redis-slot-router', RedisSlotRouterNode);
};
