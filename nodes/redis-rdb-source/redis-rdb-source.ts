/**
 * The redis-rdb-source node: reads an RDB backup file (a path, or its bytes in msg.payload)
 * and sends its keys as the snapshot operations of a full sync (lib/backup/rdb-file.ts), so
 * a backup goes through the same op filter, slot router and cluster sink as a replica.
 */
import { RdbFileSource, type RdbInput } from '../../lib/backup/rdb-file';
import { FlowControl } from '../../lib/ops/flow-control';
import { RdbError } from '../../lib/rdb/errors';
import { sinkDeployed } from '../deployed-flow';
import { failureStatus, NodeFault, shortCount as short, type NodeMessage, type NodeRedApi as Api, type NodeStatus, type OpsMessage, type RuntimeNode } from '../node-red';

type NodeRedNode = RuntimeNode;
type NodeRedApi = Api<RdbSourceDef, NodeRedNode>;

interface RdbSourceDef {
  id: string;
  name?: string;
  path?: string;
  decodeValues?: boolean;
  batchOps?: string | number;
  bigKeyMb?: string | number;
}

const MB = 1024 * 1024;

/** A number from the edit dialog; empty, negative or 0 gives the default. */
function num(v: string | number | undefined, fallback: number): number {
  const n = Number(String(v ?? '').trim());
  return String(v ?? '').trim() !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

export = function register(RED: NodeRedApi): void {
  function RedisRdbSourceNode(this: NodeRedNode, def: RdbSourceDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: NodeRedNode, def: RdbSourceDef): void {
    const flow = FlowControl.for(def.id);
    let source: RdbFileSource | null = null;
    let running: Promise<void> | null = null;
    let progressTimer: NodeJS.Timeout | null = null;
    /** Resolves a wait for the sinks when the load is stopped. */
    let cancelWait: (() => void) | null = null;
    let closed = false;

    const status = (s: NodeStatus): void => node.status(s);
    status({ fill: 'grey', shape: 'ring', text: RED._('redis-rdb-source.status.idle') });

    function report(extra: Record<string, unknown> = {}): void {
      if (!source) return;
      node.send([null, { topic: 'redis-sync/progress', payload: { source: def.id, ...source.progress, pendingBatches: flow.pending, sink: { attached: flow.attached, fault: flow.fault }, ...extra, at: Date.now() } }]);
    }

    function inputOf(msg: NodeMessage): { input: RdbInput; name: string } {
      if (Buffer.isBuffer(msg.payload)) return { input: { bytes: msg.payload }, name: RED._('redis-rdb-source.label.uploaded', { n: msg.payload.length }) };
      const path = typeof msg.filename === 'string' && msg.filename.trim() !== '' ? msg.filename.trim() : (def.path ?? '').trim();
      if (path === '') throw new NodeFault('INPUT', RED._('redis-rdb-source.errors.noInput'));
      return { input: { path }, name: path };
    }

    /**
     * After the last batch: waits until the sinks applied every batch (false: stopped first).
     * With no sink attached but one deployed, its first batch may still be on its way to it.
     */
    async function applied(): Promise<boolean> {
      let cancelled = false;
      const stopped = new Promise<void>((resolve) => (cancelWait = () => ((cancelled = true), resolve())));
      while (!closed && flow.fault === null && flow.pending > 0 && (flow.attached || sinkDeployed(RED))) {
        status({ fill: 'blue', shape: 'ring', text: RED._('redis-rdb-source.status.applying', { n: flow.pending }) });
        await Promise.race([flow.changed(), stopped]);
        if (cancelled) return false;
      }
      const fault = flow.fault;
      if (fault !== null) throw new NodeFault('INPUT', RED._('redis-rdb-source.errors.sinkFailed', { sink: fault.sink, reason: fault.reason }));
      return !closed;
    }

    async function load(msg: NodeMessage, name: string, input: RdbInput): Promise<void> {
      flow.reset();
      const s = new RdbFileSource({
        input,
        decodeValues: def.decodeValues === true,
        bigKeyBytes: num(def.bigKeyMb, 1) * MB,
        batchOps: num(def.batchOps, 1000),
        onBatch: async (ops) => {
          const seq = await flow.acquire(s.progress.shard, null);
          const batch: OpsMessage = { topic: 'redis-sync/ops', payload: ops, redisSync: { source: def.id, shard: s.progress.shard, seq } };
          node.send([batch, null]);
        },
      });
      source = s;
      progressTimer = setInterval(() => {
        const p = s.progress;
        if (p.phase === 'reading') {
          const pct = p.snapshot.percent === null ? '' : ` ${Math.floor(p.snapshot.percent)}%`;
          status({ fill: 'blue', shape: 'dot', text: RED._('redis-rdb-source.status.reading', { pct, keys: short(p.snapshot.keys) }) });
        }
        report();
      }, 1000);
      status({ fill: 'blue', shape: 'dot', text: RED._('redis-rdb-source.status.reading', { pct: '', keys: '0' }) });
      try {
        const { keys, stopped } = await s.run();
        const complete = !stopped && (await applied());
        report();
        if (!complete) status({ fill: 'grey', shape: 'ring', text: RED._('redis-rdb-source.status.stopped') });
        else status({ fill: 'green', shape: 'dot', text: RED._('redis-rdb-source.status.done', { keys: short(keys) }) });
      } catch (err) {
        report({ error: (err as Error).message });
        const e = err as Error;
        const text = RED._('redis-rdb-source.errors.failed', { file: name, error: e.message });
        if (err instanceof RdbError) status({ fill: 'red', shape: 'dot', text: RED._('redis-rdb-source.status.failedAt', { offset: short(err.offset) }) });
        else if (isFileError(err)) status({ fill: 'red', shape: 'dot', text: `${RED._('redis-rdb-source.status.failed')}: ${err.code}` });
        else status(failureStatus(RED._('redis-rdb-source.status.failed'), err));
        node.error(text, { ...msg, error: { message: text } });
      } finally {
        if (progressTimer) clearInterval(progressTimer);
        progressTimer = null;
        if (source === s) source = null;
      }
    }

    function stop(): Promise<void> {
      source?.stop();
      cancelWait?.();
      return running ?? Promise.resolve();
    }

    node.on('input', (msg, _send, done) => {
      const command = typeof msg.payload === 'string' ? msg.payload.toLowerCase() : typeof msg.topic === 'string' ? msg.topic.toLowerCase() : '';
      if (command === 'stop') {
        stop().then(() => done(), done);
        return;
      }
      if (running) {
        const text = RED._('redis-rdb-source.errors.busy');
        node.error(text, { ...msg, error: { message: text } });
        return done();
      }
      let what: { input: RdbInput; name: string };
      try {
        what = inputOf(msg);
      } catch (err) {
        status(failureStatus(RED._('redis-rdb-source.status.failed'), err));
        return done(err as Error);
      }
      // failures are reported by load (node.error with the message, so Catch nodes see them once)
      running = load(msg, what.name, what.input).finally(() => {
        running = null;
        done();
      });
    });

    node.on('close', (_removed, done) => {
      closed = true;
      FlowControl.drop(def.id);
      stop().then(done, done);
    });
  }

  RED.nodes.registerType('redis-rdb-source', RedisRdbSourceNode);
};

/** A file that cannot be read (ENOENT, EACCES, EISDIR…): its code is the few words the status has room for. */
function isFileError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string' && /^E[A-Z]+$/.test(String((err as NodeJS.ErrnoException).code));
}
