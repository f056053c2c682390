/**
 * The redis-verify node: compares the destination with the source (lib/verify), as the flow
 * maps keys (an op filter picked in the dialog, renames), in lag-aware rounds, on an input
 * message or a schedule; reports, differing keys and progress on three outputs.
 */
import type { EndpointHandle } from '../../lib/endpoint';
import { parseDbList } from '../../lib/ops/db-list';
import { readFilterSettings, type OpFilterText } from '../../lib/ops/filter-config';
import { DEFAULT_RATE, DEFAULT_ROUNDS, KeyMapping, parseRenames, parseSample, verify, VerifySide, type KeyDifference, type VerifyOptions, type VerifyProgress, type VerifyReport } from '../../lib/verify';
import { failureStatus, NodeFault, shortCount as short, type DeployedNode, type NodeMessage, type NodeRedApi as Api, type RuntimeNode, type Send } from '../node-red';

type NodeRedNode = RuntimeNode<NodeMessage>;
type NodeRedApi = Api<VerifyDef, NodeRedNode>;

interface VerifyDef {
  id: string;
  name?: string;
  source: string;
  destination: string;
  /** The id of a redis-op-filter node of the flow whose key rules to follow, or empty. */
  filter?: string;
  /** "old-prefix => new-prefix" a line: keys a function node renames. */
  renames?: string;
  dbs?: string;
  match?: string;
  /** "10%" or a number of keys; empty: every key. */
  sample?: string;
  rate?: string | number;
  batchSize?: string | number;
  rounds?: string | number;
  roundDelay?: string | number;
  ttlTolerance?: string | number;
  extra?: boolean;
  /** Minutes between scheduled runs; empty or 0: none. */
  every?: string | number;
}

/** The topic of the source's progress messages (redis-replica-source, output 2): they tell the applied lag, not start a run. */
const SOURCE_PROGRESS = 'redis-sync/progress';
/** A lag older than this is not trusted for the round delay. */
const LAG_FRESH_MS = 10_000;

/** A number field; empty gives the default, anything not a number from min up throws. */
function num(v: string | number | undefined, field: string, fallback: number, min: number): number {
  const text = String(v ?? '').trim();
  if (text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new Error(`${field}: "${text}" is not a number of at least ${min}`);
  return n;
}

export = function register(RED: NodeRedApi): void {
  function RedisVerifyNode(this: NodeRedNode, def: VerifyDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  /** The op filter's settings as deployed (RED.nodes.eachNode gives every node's definition). */
  function filterSettings(id: string): OpFilterText | null {
    let found: OpFilterText | null = null;
    RED.nodes.eachNode((n: DeployedNode) => {
      if (n.id === id && n.type === 'redis-op-filter') found = n as unknown as OpFilterText;
    });
    return found;
  }

  /** The settings as engine options; throws a NodeFault naming the field that is wrong. */
  function options(def: VerifyDef): VerifyOptions {
    try {
      const problems: string[] = [];
      const dbs = parseDbList(def.dbs, 'dbs', problems);
      let filter = null;
      if (def.filter) {
        const text = filterSettings(def.filter);
        if (text === null) throw new Error(RED._('redis-verify.errors.noFilter'));
        const read = readFilterSettings(text);
        problems.push(...read.problems.map((p) => `op filter: ${p}`));
        filter = read.config;
      }
      const renames = parseRenames(def.renames);
      problems.push(...renames.problems);
      if (problems.length > 0) throw new Error(problems.join('; '));
      return {
        dbs: dbs.length > 0 ? dbs : undefined,
        match: def.match?.trim() || undefined,
        sample: parseSample(def.sample),
        rate: num(def.rate, 'rate', DEFAULT_RATE, 0),
        batchSize: num(def.batchSize, 'batch size', 200, 1),
        rounds: num(def.rounds, 'rounds', DEFAULT_ROUNDS, 1),
        roundDelayMs: num(def.roundDelay, 'round delay', 1000, 0),
        ttlToleranceMs: num(def.ttlTolerance, 'TTL tolerance', 1000, 0),
        extra: def.extra === true,
        mapping: filter === null && renames.rules.length === 0 ? undefined : new KeyMapping(filter, renames.rules),
      };
    } catch (err) {
      throw new NodeFault('CONFIG', RED._('redis-verify.errors.config', { error: (err as Error).message }), { cause: err });
    }
  }

  function setup(node: NodeRedNode, def: VerifyDef): void {
    let running: { abort: AbortController; done: Promise<void> } | null = null;
    let closed = false;
    let lag: { ms: number; at: number } | null = null;
    let schedule: NodeJS.Timeout | null = null;
    node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-verify.status.idle') });

    function summary(r: VerifyReport): void {
      const n = r.missing + r.extra + r.differ;
      if (r.stopped) node.status({ fill: 'grey', shape: 'ring', text: RED._('redis-verify.status.stopped') });
      else if (n === 0) node.status({ fill: 'green', shape: 'dot', text: RED._('redis-verify.status.equal', { keys: short(r.compared) }) });
      else node.status({ fill: 'yellow', shape: 'dot', text: RED._('redis-verify.status.differ', { n: short(n) }) });
    }

    async function run(msg: NodeMessage, send: Send): Promise<void> {
      const abort = new AbortController();
      const endpoint = (id: string, side: 'source' | 'destination'): EndpointHandle => {
        const handle = RED.nodes.getNode(id) as EndpointHandle | null;
        if (handle === null) throw new NodeFault('CONFIG', RED._('redis-verify.errors.noEndpoint', { side }));
        return handle;
      };
      const opts = options(def);
      const sourceConfig = endpoint(def.source, 'source').config;
      const destinationConfig = endpoint(def.destination, 'destination').config;
      node.status({ fill: 'blue', shape: 'ring', text: RED._('redis-verify.status.connecting') });
      let source: VerifySide | null = null;
      let destination: VerifySide | null = null;
      const work = (async () => {
        try {
          source = await VerifySide.open('source', sourceConfig);
          destination = await VerifySide.open('destination', destinationConfig);
          const fixedDelay = opts.roundDelayMs as number;
          const report = await verify(source, destination, {
            ...opts,
            signal: abort.signal,
            // the sync's applied lag, when its source's progress reaches this node: a later round waits it out
            roundDelayMs: () => (lag !== null && Date.now() - lag.at < LAG_FRESH_MS ? Math.max(fixedDelay, lag.ms + 500) : fixedDelay),
            onProgress: (p: VerifyProgress) => {
              if (closed) return;
              if (p.percent < 100) node.status({ fill: 'blue', shape: 'dot', text: RED._('redis-verify.status.verifying', { pct: p.percent }) });
              send([null, null, { topic: 'redis-sync/verify-progress', payload: { verify: def.id, ...p, at: Date.now() } }]);
            },
            onDifference: (d: KeyDifference) => {
              if (!closed) send([null, { topic: 'redis-sync/verify-difference', payload: d }, null]);
            },
          });
          if (closed) return;
          summary(report);
          send([{ ...msg, topic: msg.topic ?? 'redis-sync/verify', payload: report }, null, null]);
        } finally {
          (source as VerifySide | null)?.close();
          (destination as VerifySide | null)?.close();
        }
      })();
      running = { abort, done: work.catch(() => undefined) };
      try {
        await work;
      } catch (err) {
        if (!closed) node.status(failureStatus(RED._('redis-verify.status.failed'), err));
        throw err;
      } finally {
        running = null;
      }
    }

    function start(msg: NodeMessage, send: Send, done: (err?: Error) => void): void {
      if (running !== null) {
        node.warn(RED._('redis-verify.log.busy'));
        return done();
      }
      run(msg, send).then(() => done(), (err: Error) => done(err));
    }

    node.on('input', (msg, send, done) => {
      if (msg.payload === 'stop') {
        running?.abort.abort();
        return done();
      }
      if (msg.topic === SOURCE_PROGRESS) {
        const p = msg.payload as { lagMs?: unknown } | undefined;
        if (typeof p?.lagMs === 'number') lag = { ms: p.lagMs, at: Date.now() };
        return done();
      }
      start(msg, send, done);
    });

    node.on('close', (_removed, done) => {
      closed = true;
      if (schedule !== null) clearInterval(schedule);
      const r = running as { abort: AbortController; done: Promise<void> } | null;
      r?.abort.abort();
      // the run closes its connections as it ends: the next deploy starts with none left open
      void (r?.done ?? Promise.resolve()).then(() => done());
    });

    let everyMin = 0;
    try {
      everyMin = num(def.every, 'every', 0, 0);
    } catch (err) {
      node.error(RED._('redis-verify.errors.config', { error: (err as Error).message }));
      node.status({ fill: 'red', shape: 'ring', text: RED._('redis-verify.status.invalid') });
    }
    if (everyMin > 0) {
      schedule = setInterval(() => {
        start({}, (msgs) => node.send(msgs), (err) => {
          if (err) node.error(err.message);
        });
      }, everyMin * 60_000);
    }
  }

  RED.nodes.registerType('redis-verify', RedisVerifyNode);
};
