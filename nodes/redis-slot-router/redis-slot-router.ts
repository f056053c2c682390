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
 * output (the others get an empty message), and the next batch of that source waits until it
 * is applied. Batches without barriers are only split by slot and flow on at once. With one
 * partition there is nothing to order and nothing waits.
 *
 * How the waiting works: a source acquires a place in its flow-control window
 * (lib/ops/flow-control.ts) before it sends a batch, and its sinks acknowledge each batch once
 * applied, so `FlowControl.pending` counts the batches sent and not yet applied. The router
 * knows how many of those it holds itself (received, not sent on): when `pending` is down to
 * that, everything it sent on is applied. With no sink attached to the source (a flow that
 * ends in debug nodes) nothing is acknowledged and nothing waits.
 *
 * Acknowledgements. Every message carries msg.redisSync.{batch, partition, part, parts}
 * besides the source's `source`, `shard` and `seq`; a sink acknowledges a batch to its
 * source once all `parts` messages of it were applied, wherever they went: acknowledgePart()
 * (lib/cluster/parts.ts) does that count for the whole process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FlowControl } from '../../lib/ops/flow-control';
import type { Operation } from '../../lib/ops/operation';
import type { PartInfo } from '../../lib/cluster/parts';
import { SlotRouter } from '../../lib/cluster/router';
import { partitionOf } from '../../lib/cluster/slots';
import { shortCount as short, type NodeMessage as BaseMessage, type NodeRedApi as Api, type RuntimeNode, type Send } from '../node-red';

/** How long a barrier waits for a sink to attach before assuming the flow has none. */
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
      node.status({ fill: 'red', shape: 'dot', text });
      node.on('input', (_msg, _send, done) => done(new Error(text)));
      return;
    }
    const router = new SlotRouter();
    /** Per source, the handling of its last message: a source's batches are handled in order. */
    const tails = new Map<string, Promise<void>>();
    /** Per source, batches received and not yet sent on: acquired by the source, so not acknowledged either. */
    const held = new Map<string, number>();
    let seq = 0;
    let closed = false;
    let statusTimer: NodeJS.Timeout | null = null;

    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-slot-router.status.idle') });

    function showStats(): void {
      statusTimer = null;
      if (closed) return;
      const { ops, split, cross } = router.stats;
      const key = cross > 0 ? 'redis-slot-router.status.routedCross' : 'redis-slot-router.status.routed';
      node.status({ fill: 'green', shape: 'dot', text: RED._(key, { ops: short(ops), split, cross }) });
    }

    // At most two status updates a second: a status per batch would cost more than routing it.
    function scheduleStats(): void {
      statusTimer ??= setTimeout(showStats, 500);
    }

    function hold(source: string, delta: 1 | -1): void {
      const count = (held.get(source) ?? 0) + delta;
      if (count > 0) held.set(source, count);
      else held.delete(source);
    }

    /** Until every batch of `source` this router sent on is applied. */
    async function settled(source: string): Promise<void> {
      const flow = FlowControl.for(source);
      if (flow.pending <= (held.get(source) ?? 0)) return;
      node.status({ fill: 'yellow', shape: 'ring', text: RED._('redis-slot-router.status.barrier') });
      // FlowControl has no event for an acknowledgement; barriers are rare, so a poll costs little.
      // A sink attaches when its first batch reaches it; a flow without any sink never does,
      // so without one the wait ends after a grace period.
      const since = Date.now();
      while (!closed && flow.pending > (held.get(source) ?? 0) && (flow.attached || Date.now() - since < ATTACH_GRACE_MS)) await sleep(5);
      scheduleStats();
    }

    /** Routes one batch and sends it on; `release` ends its holding (called once it is sent, or on failure). */
    async function handle(msg: NodeMessage, send: Send, source: string | undefined, release: () => void): Promise<void> {
      if (!Array.isArray(msg.payload)) throw new Error(RED._('redis-slot-router.errors.notBatch'));
      const ops = router.route(msg.payload as Operation[]);
      scheduleStats();
      const parts: Operation[][] = Array.from({ length: n }, () => []);
      const barrier = n > 1 && ops.some((op) => slotOfOp(op) < 0);
      const ordered = barrier && source !== undefined;
      if (barrier) {
        parts[0] = ops;
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
            node.status({ fill: 'red', shape: 'dot', text: err.message.slice(0, 60) });
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
      if (statusTimer) clearTimeout(statusTimer);
      done();
    });
  }

  RED.nodes.registerType('redis-slot-router', RedisSlotRouterNode);
};
