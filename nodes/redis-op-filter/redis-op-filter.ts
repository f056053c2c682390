/**
 * The redis-op-filter node: keeps or drops the operations of each batch by command, db and
 * key, and remaps dbs (see lib/ops/filter.ts for the engine and its rules, lib/ops/filter-config.ts for its settings).
 */
import { FilterError, OpFilter } from '../../lib/ops/filter';
import { readFilterSettings, type OpFilterText } from '../../lib/ops/filter-config';
import type { Operation } from '../../lib/ops/operation';
import { failureStatus, shortCount as short, StatusThrottle, type NodeRedApi as Api, type OpsMessage, type RuntimeNode } from '../node-red';

type NodeRedNode = RuntimeNode<OpsMessage>;
type NodeRedApi = Api<FilterDef, NodeRedNode>;

interface FilterDef extends OpFilterText {
  id: string;
  name?: string;
  /** Dropped operations go to a second output. */
  droppedOutput?: boolean;
}

export = function register(RED: NodeRedApi): void {
  function RedisOpFilterNode(this: NodeRedNode, def: FilterDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: FilterDef): void {
    const { config, problems } = readFilterSettings(def);
    const configError = problems.length > 0 ? new Error(RED._('redis-op-filter.errors.config', { problems: problems.join('; ') })) : null;
    // a loss is said once per command name (with what happened) and counted on in the status
    const filter = configError === null ? new OpFilter(config, (_command, why) => node.warn(RED._('redis-op-filter.log.lost', { why }))) : null;
    const droppedOutput = def.droppedOutput === true;

    if (configError !== null) {
      node.error(configError.message);
      node.status({ fill: 'red', shape: 'ring', text: RED._('redis-op-filter.status.invalid') });
    }

    const countsShown = new StatusThrottle(1000, () => {
      if (filter === null || filter.failure !== null) return;
      const { kept, dropped, lost } = filter.stats;
      const counts = { kept: short(kept), dropped: short(dropped) };
      const losses = Object.entries(lost);
      if (losses.length === 0) node.status({ fill: 'green', shape: 'dot', text: RED._('redis-op-filter.status.counts', counts) });
      else {
        const what = losses.sort((a, b) => b[1] - a[1]).map(([name, n]) => `${short(n)} ${name}`).join(', ');
        node.status({ fill: 'yellow', shape: 'dot', text: RED._('redis-op-filter.status.countsLost', { ...counts, lost: what }) });
      }
    });

    node.on('input', (msg, send, done) => {
      if (filter === null) return done(configError as Error);
      // stopped by a flush under the "error" policy, reported once: later batches depend on the one that was not sent
      if (filter.failure !== null) return done();
      if (!Array.isArray(msg.payload)) return done(new Error(RED._('redis-op-filter.errors.notOps')));
      let result;
      try {
        result = filter.apply(msg.payload as Operation[]);
      } catch (err) {
        const e = err as Error;
        node.status(e instanceof FilterError ? { fill: 'red', shape: 'dot', text: RED._('redis-op-filter.status.stopped', { command: e.command }) } : failureStatus(RED._('redis-op-filter.status.failed'), e));
        return done(e);
      }
      // Always sent, even empty: the source waits for the sink to acknowledge each batch,
      // and a batch that never reached the sink would stall it.
      msg.payload = result.kept;
      let droppedMsg: OpsMessage | null = null;
      if (droppedOutput && result.dropped.length > 0) {
        // without `source`: no sink acknowledges this half, the first output's batch is the one acknowledged
        const meta = { ...msg.redisSync };
        delete meta.source;
        droppedMsg = { topic: msg.topic, payload: result.dropped, redisSync: meta };
      }
      send(droppedOutput ? [msg, droppedMsg] : [msg]);
      countsShown.changed();
      done();
    });

    node.on('close', (_removed, done) => {
      countsShown.close();
      done();
    });
  }

  RED.nodes.registerType('redis-op-filter', RedisOpFilterNode);
};
