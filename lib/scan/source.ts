import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import Redis from 'ioredis';
import { toSocketOptions, type EndpointConfig } from '../endpoint';
import type { Operation } from '../ops/operation';
import { ReplicationError } from '../replication/errors';
import type { ReplPosition } from '../replication/link';
import { FilePositionStore, type PositionStore } from '../replication/position';
import type { SyncMode } from '../replication/session';
import { shardKey } from '../replication/source';
import { selectShards, TopologyWatcher, type RedisLike, type ShardInfo } from '../cluster/topology';
import { ScanShard, type ScanPhase, type ScanShardProgress } from './shard';

export interface ScanSourceOptions {
  endpoint: EndpointConfig;
  mode?: SyncMode;
  /** Which shards of a cluster (see selectShards); default all. */
  shards?: string;
  /** Working directory: the positions file lives here. */
  dir: string;
  positions?: PositionStore;
  bigKeyBytes?: number;
  scanCount?: number;
  setKeyspaceEvents?: boolean;
  topologyIntervalMs?: number;
  onBatch: (ops: Operation[], shard: string, position: ReplPosition) => Promise<void>;
  /** While this returns true, only what confirm() was given is saved (what a sink applied), as the replica source does. */
  confirmedOnly?: () => boolean;
}

export interface ScanSourceProgress {
  phase: 'starting' | 'snapshot' | 'rescan' | 'streaming' | 'reconnecting' | 'done' | 'failed' | 'stopped';
  shards: ScanShardProgress[];
  scanned: number;
  expectedKeys: number;
  /** Notified keys not read yet, every shard; the age of the oldest. */
  pending: number;
  lagMs: number;
  rescans: number;
  reconnects: number;
}

/** Positions are written at most this often (and at stop). */
const SAVE_MS = 1000;

/**
 * Copies a whole source without replication rights: one ScanShard per master of a cluster
 * (found and followed through failovers by the topology watcher), or one for a standalone
 * server. Emits 'phase', 'retry' (shard, error, delayMs), 'rescan' (shard, reason),
 * 'warning' (text), 'topology-error' (error) and 'end' (error | null) once.
 */
export class ScanSource extends EventEmitter {
  phase: ScanSourceProgress['phase'] = 'starting';
  private readonly opts: ScanSourceOptions;
  private readonly readers = new Map<string, { reader: ScanShard; shard: ShardInfo }>();
  private readonly positions: PositionStore;
  /** Per shard, the position to save next, and the one saved last. */
  private readonly unsaved = new Map<string, ReplPosition>();
  private saveTimer: NodeJS.Timeout | null = null;
  private watcher: TopologyWatcher | null = null;
  private stopped: Promise<void> | null = null;
  private ended = false;
  private failure: ReplicationError | null = null;

  constructor(opts: ScanSourceOptions) {
    super();
    this.opts = opts;
    this.positions = opts.positions ?? new FilePositionStore(join(opts.dir, 'positions.json'));
  }

  async start(): Promise<void> {
    this.saveTimer = setInterval(() => void this.save(), SAVE_MS).unref();
    const ep = this.opts.endpoint;
    if (ep.mode === 'standalone') {
      const master = { id: `${ep.host}:${ep.port}`, host: ep.host, port: ep.port };
      await this.startShard('standalone', { id: master.id, slots: [[0, 16383]], master, replicas: [] });
      return;
    }
    const tls = ep.tls?.enabled === true;
    this.watcher = new TopologyWatcher((host, port) => this.connect(host, port), ep.seeds, { intervalMs: this.opts.topologyIntervalMs ?? 5000, tls });
    this.watcher.on('change', (t, diff) => {
      for (const s of diff.removed) void this.stopShard(shardKey(t.mode, s));
      let chosen: ShardInfo[] = [];
      try {
        chosen = selectShards(t.shards, this.opts.shards ?? 'all');
      } catch (err) {
        this.emit('topology-error', err);
      }
      for (const s of diff.added) if (chosen.includes(s)) void this.startShard(t.mode, s);
      for (const c of [...diff.masterChanged, ...diff.slotsChanged, ...diff.replicasChanged]) {
        const entry = this.readers.get(shardKey(t.mode, c.before));
        if (entry) entry.shard = c.after;
      }
      // a new master: its notifications are others than the old one's, so the shard reconnects and rescans
      for (const c of diff.masterChanged) {
        const entry = this.readers.get(shardKey(t.mode, c.before));
        if (entry) entry.reader.reconnect(`the master moved to ${c.after.master.host}:${c.after.master.port}`);
      }
    });
    this.watcher.on('error', (err) => this.emit('topology-error', err));
    const topology = await this.watcher.start().catch(async (err: unknown) => {
      await this.watcher?.stop();
      throw new ReplicationError('CONNECT', `the source cannot be reached: ${(err as Error).message}`, { cause: err });
    });
    let problem: string | null = null;
    try {
      if (selectShards(topology.shards, this.opts.shards ?? 'all').length === 0) problem = `the shard selection "${this.opts.shards}" matches none of the ${topology.shards.length} shards`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem !== null) {
      await this.watcher.stop();
      throw new ReplicationError('LOCAL', problem);
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.watcher?.stop();
      await Promise.all([...this.readers.values()].map((e) => e.reader.stop()));
      if (this.saveTimer) clearInterval(this.saveTimer);
      await this.save();
      this.finish(this.failure, this.failure ? 'failed' : 'stopped');
    })();
    return this.stopped;
  }

  /** A sink applied the shard's operations up to `position`: saved as where a restart continues the sync. */
  confirm(shard: string, position: ReplPosition): void {
    if (this.readers.has(shard)) this.unsaved.set(shard, position);
  }

  get progress(): ScanSourceProgress {
    const shards = [...this.readers.values()].map((e) => e.reader.progress);
    return {
      phase: this.phase,
      shards,
      scanned: shards.reduce((n, p) => n + p.scanned, 0),
      expectedKeys: shards.reduce((n, p) => n + (p.expectedKeys ?? 0), 0),
      pending: shards.reduce((n, p) => n + p.pending, 0),
      lagMs: shards.reduce((n, p) => Math.max(n, p.lagMs), 0),
      rescans: shards.reduce((n, p) => n + p.rescans, 0),
      reconnects: shards.reduce((n, p) => n + p.reconnects, 0),
    };
  }

  private async save(): Promise<void> {
    const all = [...this.unsaved];
    this.unsaved.clear();
    try {
      for (const [shard, position] of all) await this.positions.save(shard, position);
    } catch (err) {
      this.emit('warning', `the scan position cannot be saved: ${(err as Error).message}`);
    }
  }

  private connect(host: string, port: number): Promise<RedisLike> {
    const so = toSocketOptions(this.opts.endpoint, host, port);
    const client = new Redis({ host, port, username: so.auth?.username, password: so.auth?.password, tls: so.tls ? so.connect : undefined, connectTimeout: so.connectTimeoutMs, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    let reason: Error | null = null;
    client.on('error', (err: Error) => (reason = err));
    return client.connect().then(
      () => client,
      (err: unknown) => {
        throw reason ?? err;
      },
    );
  }

  private async startShard(mode: 'standalone' | 'cluster', shard: ShardInfo): Promise<void> {
    const key = shardKey(mode, shard);
    if (this.readers.has(key) || this.stopped) return;
    const sync = this.opts.mode ?? 'full+incremental';
    const resume = sync === 'full+incremental' ? await this.positions.load(key) : null;
    const reader = new ScanShard({
      shard: key,
      slot: shard.slots[0][0],
      locate: () => this.locate(key),
      endpoint: this.opts.endpoint,
      mode: sync,
      resume,
      bigKeyBytes: this.opts.bigKeyBytes ?? 1024 * 1024,
      scanCount: this.opts.scanCount ?? 1000,
      setKeyspaceEvents: this.opts.setKeyspaceEvents === true,
      onBatch: async (ops, position) => {
        await this.opts.onBatch(ops, key, position);
        if (!this.opts.confirmedOnly?.()) this.unsaved.set(key, position);
      },
    });
    this.readers.set(key, { reader, shard });
    reader.on('phase', () => this.updatePhase());
    reader.on('retry', (err, delay) => this.emit('retry', key, err, delay));
    reader.on('rescan', (reason) => this.emit('rescan', key, reason));
    reader.on('warning', (text) => this.emit('warning', text));
    reader.on('end', (err: ReplicationError | null) => {
      if (err) {
        this.phase = 'failed';
        this.failure ??= err;
        void this.stop();
      } else this.updatePhase();
    });
    reader.start();
    this.updatePhase();
  }

  private async stopShard(key: string): Promise<void> {
    const entry = this.readers.get(key);
    if (!entry) return;
    this.readers.delete(key);
    await entry.reader.stop();
  }

  private async locate(key: string): Promise<{ host: string; port: number }> {
    const entry = this.readers.get(key);
    if (!entry) throw new ReplicationError('LOCAL', `shard ${key} is no longer read`);
    if (entry.reader.reconnects > 0) {
      try {
        await this.watcher?.refresh();
      } catch {
        // the last known topology; the connect attempt says what is wrong
      }
    }
    return { host: entry.shard.master.host, port: entry.shard.master.port };
  }

  private updatePhase(): void {
    if (this.phase === 'failed' || this.phase === 'stopped') return;
    const phases: ScanPhase[] = [...this.readers.values()].map((e) => e.reader.phase);
    let p: ScanSourceProgress['phase'];
    if (phases.length === 0 || phases.includes('connecting')) p = 'starting';
    else if (phases.includes('reconnecting')) p = 'reconnecting';
    else if (phases.includes('snapshot')) p = 'snapshot';
    else if (phases.includes('rescan')) p = 'rescan';
    else if (phases.every((x) => x === 'done')) p = 'done';
    else p = 'streaming';
    if (p === this.phase) return;
    this.phase = p;
    this.emit('phase', p);
    if (p === 'done') this.finish(null, 'done');
  }

  private finish(err: ReplicationError | null, phase: ScanSourceProgress['phase']): void {
    if (this.ended) return;
    this.ended = true;
    if (this.saveTimer) clearInterval(this.saveTimer);
    if (this.phase !== 'failed') this.phase = phase;
    this.emit('end', err);
  }
}
