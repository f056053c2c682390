import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { connectNode, toSocketOptions, type EndpointConfig } from '../endpoint';
import type { Operation } from '../ops/operation';
import { ReplicationError } from './errors';
import { commandNames } from './renamed';
import type { ReplPosition } from './link';
import { FilePositionStore, type PositionStore } from './position';
import { ReplicaSession, snapshotProgress, type ReplicaSessionOptions, type SessionProgress, type SnapshotProgress, type SyncMode } from './session';
import { formatSlotRanges, SLOT_COUNT } from '../cluster/slots';
import { pickNode, selectShards, TopologyWatcher, type ShardInfo } from '../cluster/topology';

export interface ReplicaSourceOptions {
  endpoint: EndpointConfig;
  mode?: SyncMode;
  /** Which shards of a cluster this source replicates (see selectShards); default all. */
  shards?: string;
  /** Replicate from a replica node of each shard instead of its master. */
  preferReplica?: boolean;
  /** Working directory: spools and the positions file live here. */
  dir: string;
  /** Where positions are kept; default a file in `dir`. */
  positions?: PositionStore;
  spoolMaxBytes?: number;
  decodeValues?: boolean;
  bigKeyBytes?: number;
  batchOps?: number;
  batchBytes?: number;
  batchLatencyMs?: number;
  topologyIntervalMs?: number;
  /** The port announced to masters (REPLCONF listening-port). */
  listeningPort?: number;
  /** Where the provider renamed PSYNC or SYNC: a name, or `host:port@name,…` per node (see commandNames). */
  psyncCommand?: string;
  syncCommand?: string;
  onBatch: (ops: Operation[], shard: string, position: ReplPosition | null) => Promise<void>;
  /** See ReplicaSessionOptions.onPassed. */
  onPassed?: (shard: string, position: ReplPosition) => void;
  /** See ReplicaSessionOptions.confirmedOnly. */
  confirmedOnly?: () => boolean;
}

export interface SourceProgress {
  phase: 'starting' | 'snapshot' | 'streaming' | 'reconnecting' | 'done' | 'failed' | 'stopped';
  shards: SessionProgress[];
  snapshot: SnapshotProgress;
  /** Some shard's master holds its sync back (repl-diskless-sync-delay, a BGSAVE running). */
  waitingForMaster: boolean;
  /** Sums and maximum of the shards' (see SessionProgress). */
  lagBytes: number;
  lagMs: number;
  /** Streaming, and every shard has everything it received applied. */
  caughtUp: boolean;
  spoolBytes: number;
  reconnects: number;
}

/**
 * Names a shard by the slots it serves, not by its master's node id: the id changes with
 * a failover, the slots do not, and positions and checkpoints must survive a failover.
 */
export function shardKey(mode: 'standalone' | 'cluster', shard: ShardInfo): string {
  return mode === 'standalone' ? 'standalone' : `slots:${formatSlotRanges(shard.slots)}`;
}

/**
 * Replicates a whole source: one ReplicaSession per (selected) shard of a cluster, or one
 * for a standalone server, following failovers through the topology. Emits 'phase',
 * 'retry' (shard, error, delayMs), 'full-resync' (shard, reason), 'shard-end' (shard,
 * error | null) and 'end' (error | null) once everything stopped.
 */
export class ReplicaSource extends EventEmitter {
  phase: SourceProgress['phase'] = 'starting';
  private readonly opts: ReplicaSourceOptions;
  private readonly sessions = new Map<string, { session: ReplicaSession; shard: ShardInfo }>();
  private watcher: TopologyWatcher | null = null;
  private readonly positions: PositionStore;
  private stopped: Promise<void> | null = null;
  private ended = false;
  private syncCommands: ReplicaSessionOptions['syncCommands'];
  /** The fault of a shard that could not go on: what 'end' reports once everything stopped. */
  private failure: ReplicationError | null = null;

  constructor(opts: ReplicaSourceOptions) {
    super();
    this.opts = opts;
    this.positions = opts.positions ?? new FilePositionStore(join(opts.dir, 'positions.json'));
  }

  async start(): Promise<void> {
    // a malformed setting stops the start, before any connection
    const psync = commandNames(this.opts.psyncCommand, 'PSYNC');
    const sync = commandNames(this.opts.syncCommand, 'SYNC');
    this.syncCommands = (host, port) => ({ psyncCommand: psync(host, port), syncCommand: sync(host, port) });
    const ep = this.opts.endpoint;
    if (ep.mode === 'standalone' && !this.opts.preferReplica) {
      // Nothing to discover: the one node is the shard. (Its replicas, when asked for, are.)
      const master = { id: `${ep.host}:${ep.port}`, host: ep.host, port: ep.port };
      await this.startShard('standalone', { id: master.id, slots: [[0, SLOT_COUNT - 1]], master, replicas: [] });
      return;
    }
    const seeds = ep.mode === 'cluster' ? ep.seeds : [{ host: ep.host, port: ep.port }];
    const tls = this.opts.endpoint.tls?.enabled === true;
    this.watcher = new TopologyWatcher((host, port) => connectNode(this.opts.endpoint, host, port), seeds, { intervalMs: this.opts.topologyIntervalMs ?? 5000, tls });
    this.watcher.on('change', (t, diff) => {
      for (const s of diff.removed) void this.stopShard(shardKey(t.mode, s));
      // Selected among all shards (an index counts every shard), started when new. A bad selector
      // must not throw out of the discovery: start() reports it, later rounds as 'topology-error'.
      let chosen: ShardInfo[] = [];
      try {
        chosen = selectShards(t.shards, this.opts.shards ?? 'all');
      } catch (err) {
        this.emit('topology-error', err);
      }
      for (const s of diff.added) if (chosen.includes(s)) void this.startShard(t.mode, s);
      for (const c of [...diff.masterChanged, ...diff.slotsChanged, ...diff.replicasChanged]) {
        const entry = this.sessions.get(shardKey(t.mode, c.before));
        if (entry) entry.shard = c.after;
      }
    });
    this.watcher.on('error', (err) => this.emit('topology-error', err));
    let topology;
    try {
      topology = await this.watcher.start();
    } catch (err) {
      const e = discoveryError(err);
      if (!e.retryable) {
        await this.watcher.stop();
        throw e;
      }
      // The watcher asks again every few seconds; the first answer starts the shards ('change' above).
      this.emit('retry', 'topology', e, this.opts.topologyIntervalMs ?? 5000);
      this.watcher.on('error', (again) => this.sessions.size === 0 && this.emit('retry', 'topology', discoveryError(again), this.opts.topologyIntervalMs ?? 5000));
      return;
    }
    const selector = this.opts.shards ?? 'all';
    let problem: string | null = null;
    try {
      if (selectShards(topology.shards, selector).length === 0) problem = `the shard selection "${selector}" matches none of the ${topology.shards.length} shards`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem !== null) {
      await this.watcher.stop(); // nothing goes on in the background after a rejected start
      throw new ReplicationError('LOCAL', problem);
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.watcher?.stop();
      await Promise.all([...this.sessions.values()].map((e) => e.session.stop()));
      this.finish(this.failure, this.failure ? 'failed' : 'stopped');
    })();
    return this.stopped;
  }

  get progress(): SourceProgress {
    const shards = [...this.sessions.values()].map((e) => e.session.progress);
    const sum = (f: (p: SessionProgress) => number | null): number | null => (shards.every((p) => f(p) !== null) ? shards.reduce((a, p) => a + (f(p) as number), 0) : null);
    const elapsed = shards.reduce<number | null>((a, p) => (p.snapshot.elapsedMs === null ? a : Math.max(a ?? 0, p.snapshot.elapsedMs)), null);
    return {
      phase: this.phase,
      shards,
      snapshot: snapshotProgress(sum((p) => p.snapshot.keys) ?? 0, sum((p) => p.snapshot.bytes) ?? 0, sum((p) => p.snapshot.size), sum((p) => p.snapshot.expectedKeys), elapsed, shards.length > 0 && shards.every((p) => p.snapshot.percent === 100)),
      waitingForMaster: shards.some((p) => p.waitingForMaster),
      lagBytes: shards.reduce((a, p) => a + p.lagBytes, 0),
      lagMs: shards.reduce((a, p) => Math.max(a, p.lagMs), 0),
      caughtUp: this.phase === 'streaming' && shards.length > 0 && shards.every((p) => p.caughtUp),
      spoolBytes: shards.reduce((a, p) => a + p.spoolBytes, 0),
      reconnects: shards.reduce((a, p) => a + p.reconnects, 0),
    };
  }

  private async startShard(mode: 'standalone' | 'cluster', shard: ShardInfo): Promise<void> {
    const key = shardKey(mode, shard);
    if (this.sessions.has(key) || this.stopped) return;
    const so = toSocketOptions(this.opts.endpoint, shard.master.host, shard.master.port);
    const sessionOpts: ReplicaSessionOptions = {
      shard: key,
      locate: () => this.locate(key),
      syncCommands: this.syncCommands,
      link: {
        tls: so.tls ? so.connect : null,
        username: so.auth?.username,
        password: so.auth?.password,
        connectTimeoutMs: so.connectTimeoutMs,
        listeningPort: this.opts.listeningPort,
      },
      spoolDir: join(this.opts.dir, 'spool', key.replace(/[^\w.-]+/g, '_')),
      spoolMaxBytes: this.opts.spoolMaxBytes,
      positions: this.positions,
      mode: this.opts.mode,
      decodeValues: this.opts.decodeValues,
      bigKeyBytes: this.opts.bigKeyBytes,
      batchOps: this.opts.batchOps,
      batchBytes: this.opts.batchBytes,
      batchLatencyMs: this.opts.batchLatencyMs,
      onBatch: (ops, _session, position) => this.opts.onBatch(ops, key, position),
      onPassed: (_session, position) => this.opts.onPassed?.(key, position),
      confirmedOnly: this.opts.confirmedOnly,
    };
    const session = new ReplicaSession(sessionOpts);
    this.sessions.set(key, { session, shard });
    session.on('phase', () => this.updatePhase());
    session.on('retry', (err, delay) => this.emit('retry', key, err, delay));
    session.on('full-resync', (reason) => this.emit('full-resync', key, reason));
    session.on('end', (err: ReplicationError | null) => {
      this.emit('shard-end', key, err);
      if (err) {
        // One shard that cannot go on makes the copy incomplete: stop the rest, say why.
        this.phase = 'failed';
        this.failure ??= err;
        void this.stop();
      } else {
        this.updatePhase();
      }
    });
    await session.start();
    this.updatePhase();
  }

  /** A sink applied the shard's operations up to `position`. */
  confirm(shard: string, position: ReplPosition): Promise<void> {
    return this.sessions.get(shard)?.session.confirm(position) ?? Promise.resolve();
  }

  private async stopShard(key: string): Promise<void> {
    const entry = this.sessions.get(key);
    if (!entry) return;
    this.sessions.delete(key);
    await entry.session.stop();
  }

  /** Before a (re)connect: the freshest view of where the shard is served. */
  private async locate(key: string): Promise<{ host: string; port: number }> {
    const entry = this.sessions.get(key);
    if (!entry) throw new ReplicationError('LOCAL', `shard ${key} is no longer replicated`);
    if (entry.session.reconnects > 0 || entry.session.phase === 'reconnecting') {
      try {
        await this.watcher?.refresh();
      } catch {
        // keep the last known topology; the connect attempt reports what is wrong
      }
    }
    const node = pickNode(entry.shard, this.opts.preferReplica ? 'replica' : 'master');
    return { host: node.host, port: node.port };
  }

  private updatePhase(): void {
    if (this.phase === 'failed' || this.phase === 'stopped') return;
    const phases = [...this.sessions.values()].map((e) => e.session.phase);
    let p: SourceProgress['phase'];
    if (phases.length === 0 || phases.includes('connecting')) p = 'starting';
    else if (phases.includes('reconnecting')) p = 'reconnecting';
    else if (phases.includes('snapshot')) p = 'snapshot';
    else if (phases.every((x) => x === 'done')) p = 'done';
    else p = 'streaming';
    if (p !== this.phase) {
      this.phase = p;
      this.emit('phase', p);
      if (p === 'done') this.finish(null, 'done');
    }
  }

  private finish(err: ReplicationError | null, phase: SourceProgress['phase']): void {
    if (this.ended) return;
    this.ended = true;
    if (this.phase !== 'failed') this.phase = phase;
    this.emit('end', err);
  }
}

/** Why no seed of a source told its topology: refused credentials stop the source, the rest is tried again. */
function discoveryError(err: unknown): ReplicationError {
  const message = `the source cannot be reached: ${(err as Error).message}`;
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/.test(message)) {
    return new ReplicationError('AUTH', `${message} (check the username and password of the source endpoint)`, { cause: err });
  }
  if (/NOPERM/.test(message)) {
    return new ReplicationError('NOPERM', `${message} (the user needs +info +cluster|shards +cluster|slots +cluster|nodes to find the masters)`, { cause: err });
  }
  return new ReplicationError('CONNECT', message, { cause: err });
}
