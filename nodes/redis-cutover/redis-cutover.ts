/**
 * The redis-cutover node: on a `cutover` message pauses writes on the source, waits until the
 * sinks applied everything, compares the keys written lately and says "switch now"
 * (lib/cutover/cutover.ts). Batches of operations wired into it are tapped for those keys.
 */
import type { EndpointHandle } from '../../lib/endpoint';
import { validateEndpointConfig } from '../../lib/endpoint';
import { Cutover, CutoverError, type CutoverReport } from '../../lib/cutover/cutover';
import { RecentKeys } from '../../lib/cutover/recent-keys';
import type { Operation } from '../../lib/ops/operation';
import { failureStatus, NodeFault, shortCount as short, type NodeMessage, type NodeRedApi as Api, type ReplicaSourceHandle, type RuntimeNode } from '../node-red';

type NodeRedApi = Api<CutoverDef, RuntimeNode>;

interface CutoverDef {
  id: string;
  name?: string;
  /** The redis-replica-source node whose sync is cut over. */
  source: string;
  destination: string;
  timeoutMs?: string | number;
  holdMs?: string | number;
  windowMin?: string | number;
  maxKeys?: string | number;
  ttlToleranceMs?: string | number;
}

/** A number from the edit dialog; empty or invalid gives the default. */
function num(v: string | number | undefined, fallback: number, min: number): number {
  const text = String(v ?? '').trim();
  const n = Number(text);
  return text !== '' && Number.isFinite(n) && n >= min ? n : fallback;
}

export = function register(RED: NodeRedApi): void {
  function RedisCutoverNode(this: RuntimeNode, def: CutoverDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: RuntimeNode, def: CutoverDef): void {
    const recent = new RecentKeys(num(def.maxKeys, 10_000, 1));
    const timeoutMs = num(def.timeoutMs, 5000, 100);
    const holdMs = num(def.holdMs, 0, 0);
    let cutover: Cutover | null = null;
    /** Between a `cutover` message and its report. */
    let running = false;
    let closing = false;
    const idle = (): void => node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-cutover.status.idle', { n: short(recent.size) }) });
    idle();

    /** The source's handle, or why there is none. */
    function sourceHandle(): ReplicaSourceHandle {
      const n = RED.nodes.getNode(def.source) as { replicaSource?: ReplicaSourceHandle } | null;
      if (!n?.replicaSource) throw new NodeFault('CONFIG', RED._('redis-cutover.errors.noSource'));
      return n.replicaSource;
    }

    function start(writesStopped: boolean): Cutover {
      const source = sourceHandle();
      const destination = RED.nodes.getNode(def.destination) as EndpointHandle | null;
      if (!destination) throw new NodeFault('CONFIG', RED._('redis-cutover.errors.noDestination'));
      const problems = validateEndpointConfig(destination.config);
      if (problems.length > 0) throw new NodeFault('CONFIG', RED._('redis-cutover.errors.invalidEndpoint', { problems: problems.join('; ') }));
      return new Cutover({
        source: {
          endpoint: source.endpoint,
          progress: () => source.progress(),
          notApplied: () => {
            if (!source.sinkDeployed()) return RED._('redis-cutover.errors.noSink');
            const fault = source.fault();
            if (fault === null) return null;
            return RED._(fault.kind === 'failed' ? 'redis-cutover.errors.sinkFailed' : 'redis-cutover.errors.sinkGone', { sink: fault.sink, reason: fault.reason });
          },
        },
        destination: destination.config,
        recentKeys: recent,
        timeoutMs,
        holdMs,
        windowMs: num(def.windowMin, 5, 0) * 60_000,
        ttlToleranceMs: num(def.ttlToleranceMs, 1000, 0),
        writesStopped,
        onStep: (step, d) => {
          const text = step === 'prechecking' ? RED._('redis-cutover.status.prechecking', { n: short(d.keys ?? 0) }) : step === 'pausing' ? RED._('redis-cutover.status.pausing') : step === 'draining' ? RED._('redis-cutover.status.draining', { bytes: short(d.behindBytes ?? 0) }) : RED._('redis-cutover.status.checking', { n: short(d.keys ?? 0) });
          node.status({ fill: 'blue', shape: 'dot', text });
        },
      });
    }

    function switched(report: CutoverReport): void {
      const key = report.writesPaused ? (report.holdMs > 0 ? 'redis-cutover.status.holding' : 'redis-cutover.status.switched') : 'redis-cutover.status.switchedUnpaused';
      node.status({ fill: 'green', shape: 'dot', text: RED._(key, { ms: report.pauseMs }) });
      if (report.holdMs > 0) {
        setTimeout(() => {
          if (cutover?.pausing === false && !closing) node.status({ fill: 'green', shape: 'ring', text: RED._('redis-cutover.status.released', { ms: report.pauseMs }) });
        }, report.holdMs + 50).unref();
      }
    }

    node.on('input', (msg: NodeMessage, send, done) => {
      const command = typeof msg.payload === 'string' ? msg.payload.toLowerCase() : '';
      if (Array.isArray(msg.payload)) {
        recent.note(msg.payload as Operation[]);
        if (cutover === null) idle();
        return done();
      }
      if (command === 'release') {
        const c = cutover;
        if (c === null) return done();
        c.release().then(
          () => {
            node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-cutover.status.releasedNow') });
            done();
          },
          (err: Error) => done(err),
        );
        return;
      }
      if (command !== 'cutover') {
        return done(new NodeFault('INPUT', RED._('redis-cutover.errors.input')));
      }
      if (cutover?.pausing === true || running) return done(new NodeFault('INPUT', RED._('redis-cutover.errors.busy')));
      let c: Cutover;
      try {
        c = start(msg.writesStopped === true);
      } catch (err) {
        node.status(failureStatus(RED._('redis-cutover.status.aborted'), err));
        return done(err as Error);
      }
      cutover = c;
      running = true;
      c.run().then(
        (report) => {
          running = false;
          switched(report);
          send([{ ...msg, topic: 'redis-sync/cutover', payload: { switchNow: true, ...report } }, null]);
          done();
        },
        (err: Error) => {
          running = false;
          if (closing) return done();
          const e = err instanceof CutoverError ? err : new CutoverError('CONNECT', err.message);
          node.status(failureStatus(RED._('redis-cutover.status.aborted'), e));
          const differences = e.differences.slice(0, 100);
          send([null, { ...msg, topic: 'redis-sync/cutover', payload: { switchNow: false, code: e.code, reason: e.message, ...e.figures, differences } }]);
          done(new Error(RED._('redis-cutover.errors.aborted', { error: e.message })));
        },
      );
    });

    node.on('close', (_removed, done) => {
      closing = true;
      const c = cutover;
      cutover = null;
      if (c === null) return done();
      // the pause must not outlive the node: lifted before the node is gone
      c.close().then(done, (err: Error) => {
        node.error(err.message);
        done();
      });
    });
  }

  RED.nodes.registerType('redis-cutover', RedisCutoverNode);
};
