/**
 * The redis-slot-router node: gives every operation of a batch its hash slot, splits the
 * cross-slot multi-key commands that can be split (lib/cluster/router.ts), and sends each
 * batch on as one message per partition (output), every slot always to the same output, in
 * the order across partitions that lib/cluster/partition-barrier.ts keeps.
 */
import { PartitionBarrier } from '../../lib/cluster/partition-barrier';
import { SlotRouter } from '../../lib/cluster/router';
import type { Operation } from '../../lib/ops/operation';
import { sinkDeployed, sinkWiredBehind } from '../deployed-flow';
import { failureStatus, NodeFault, shortCount as short, StatusThrottle, type NodeRedApi as Api, type OpsMessage, type RuntimeNode } from '../node-red';

type NodeRedNode = RuntimeNode<OpsMessage>;
type NodeRedApi = Api<RouterDef, NodeRedNode>;

interface RouterDef {
  id: string;
  name?: string;
  partitions?: string | number;
}

const MAX_PARTITIONS = 16;

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
    const stats = new StatusThrottle(500, () => {
      const { ops, split, cross } = router.stats;
      const key = cross > 0 ? 'redis-slot-router.status.routedCross' : 'redis-slot-router.status.routed';
      node.status({ fill: 'green', shape: 'dot', text: RED._(key, { ops: short(ops), split: short(split), cross: short(cross) }) });
    });
    const barrier = new PartitionBarrier({
      id: def.id,
      partitions: n,
      // asked at each barrier: a deploy of changed nodes may rewire the outputs without restarting this node
      sinkBehind: () => sinkWiredBehind(RED, def.id) ?? sinkDeployed(RED),
      onWait: (waiting) => {
        if (waiting) node.status({ fill: 'yellow', shape: 'ring', text: RED._('redis-slot-router.status.barrier') });
        else stats.changed();
      },
    });

    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-slot-router.status.idle') });

    node.on('input', (msg, send, done) => {
      const fail = (err: Error): void => {
        node.status(failureStatus(RED._('redis-slot-router.status.failed'), err));
        done(err);
      };
      let ops: Operation[];
      try {
        if (!Array.isArray(msg.payload)) throw new NodeFault('INPUT', RED._('redis-slot-router.errors.notBatch'));
        ops = router.route(msg.payload as Operation[]);
      } catch (err) {
        return fail(err as Error);
      }
      stats.changed();
      // One send per output: Node-RED clones every message of a send but the first, Buffers and all.
      const sendParts = (parts: Array<Pick<OpsMessage, 'payload' | 'redisSync'>>): void =>
        parts.forEach((part, i) => {
          const out = new Array<OpsMessage | null>(n).fill(null);
          out[i] = { ...msg, ...part };
          send(out);
        });
      barrier.submit(ops, msg.redisSync, sendParts).then(() => done(), fail);
    });

    node.on('close', (_removed, done) => {
      barrier.close();
      stats.close();
      done();
    });
  }

  RED.nodes.registerType('redis-slot-router', RedisSlotRouterNode);
};
