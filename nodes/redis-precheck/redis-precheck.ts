/**
 * The redis-precheck node: runs the checks of lib/precheck against a source and a destination
 * endpoint and routes the message by the result, so a sync starts only once they pass.
 */
import type { EndpointHandle } from '../../lib/endpoint';
import { parseDbList } from '../../lib/ops/db-list';
import { runPrecheck, type PrecheckOptions, type PrecheckReport } from '../../lib/precheck';
import { failureStatus, NodeFault, type NodeMessage as BaseMessage, type NodeRedApi as Api, type RuntimeNode, type NodeStatus, type Send } from '../node-red';

type NodeMessage = BaseMessage;
type NodeRedNode = RuntimeNode<NodeMessage>;
type NodeRedApi = Api<PrecheckDef, NodeRedNode>;

interface PrecheckDef {
  id: string;
  name?: string;
  source: string;
  destination: string;
  requireEmpty?: boolean;
  typedFallback?: boolean;
  /** Destination dbs the sync writes into, a db list ("0, 2-4", lib/ops/db-list.ts); empty means every db. */
  databases?: string;
  runOnDeploy?: boolean;
}

/** Findings of an endpoint that could not be opened (OpenFailureKind), by their status (`status.cause.<key>`). */
const OPENING: Readonly<Record<string, string>> = { connection: 'noConnection', auth: 'auth', tls: 'tls', protocol: 'notRedis' };

export = function register(RED: NodeRedApi): void {
  function RedisPrecheckNode(this: NodeRedNode, def: PrecheckDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: PrecheckDef): void {
    const running = new Set<Promise<void>>();
    let closed = false;
    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-precheck.status.idle') });

    function summary(r: PrecheckReport): NodeStatus {
      if (!r.passed) {
        const n = r.errors.length;
        // an endpoint that could not be opened hides every other check: its cause is the news
        const opening = r.errors.map((f) => (Object.hasOwn(OPENING, f.id) ? OPENING[f.id] : undefined)).find((c) => c !== undefined);
        if (opening !== undefined) return { fill: 'red', shape: 'dot', text: RED._(`redis-precheck.status.cause.${opening}`) + (n > 1 ? ` (+${n - 1})` : '') };
        return { fill: 'red', shape: 'dot', text: RED._(n === 1 ? 'redis-precheck.status.failedError' : 'redis-precheck.status.failedErrors', { n }) };
      }
      const n = r.warnings.length;
      const key = n === 0 ? 'passed' : n === 1 ? 'passedWarning' : 'passedWarnings';
      return { fill: n === 0 ? 'green' : 'yellow', shape: 'dot', text: RED._(`redis-precheck.status.${key}`, { n }) };
    }

    /** Resolves with the report; rejects only for a fault of the node itself (no endpoint, bad settings). */
    async function check(): Promise<PrecheckReport> {
      const endpoint = (id: string, side: 'source' | 'destination'): EndpointHandle => {
        const handle = RED.nodes.getNode(id) as EndpointHandle | null;
        if (handle === null) throw new NodeFault('CONFIG', RED._('redis-precheck.errors.noEndpoint', { side }));
        return handle;
      };
      const source = endpoint(def.source, 'source');
      const destination = endpoint(def.destination, 'destination');
      const problems: string[] = [];
      const dbs = parseDbList(def.databases, 'destination dbs', problems);
      if (problems.length > 0) throw new NodeFault('CONFIG', RED._('redis-precheck.errors.databases', { error: problems.join('; ') }));
      const options: PrecheckOptions = {
        requireEmptyDestination: def.requireEmpty === true,
        typedFallback: def.typedFallback !== false,
        databases: dbs.length > 0 ? dbs : undefined,
      };
      return runPrecheck({ source: source.config, destination: destination.config, options });
    }

    function run(msg: NodeMessage, send: Send): Promise<void> {
      node.status({ fill: 'yellow', shape: 'ring', text: RED._('redis-precheck.status.checking') });
      const work = check().then(
        (report) => {
          if (closed) return;
          node.status(summary(report));
          // a result, not a fault (Catch nodes are left alone), but the log says why with output 2 unwired
          if (!report.passed) node.warn(RED._('redis-precheck.log.failed', { errors: report.errors.map((f) => `${f.message} (${f.remedy})`).join('; ') }));
          const out = { ...msg, payload: report };
          send(report.passed ? [out, null] : [null, out]);
        },
        (err: Error) => {
          if (!closed) node.status(failureStatus(RED._('redis-precheck.status.error'), err));
          throw err;
        },
      );
      const tracked = work.catch(() => undefined).finally(() => running.delete(tracked));
      running.add(tracked);
      return work;
    }

    node.on('input', (msg, send, done) => {
      // A failed precheck is a result (output 2); only a fault of the node itself goes to done(err).
      run(msg, send).then(() => done(), done);
    });

    node.on('close', (_removed, done) => {
      closed = true;
      // A run under way closes its connections within the endpoints' connect timeouts.
      void Promise.all(running).then(() => done());
    });

    if (def.runOnDeploy === true) {
      // After the constructor, so the nodes wired to the outputs exist when the result is sent.
      setImmediate(() => {
        run({}, (msgs) => node.send(msgs)).catch((err: Error) => node.error(RED._('redis-precheck.errors.failed', { error: err.message })));
      });
    }
  }

  RED.nodes.registerType('redis-precheck', RedisPrecheckNode);
};
