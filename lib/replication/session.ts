import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { operationBytes, type Operation } from '../ops/operation';
import { ReplicationDecoder } from './decoder';
import { ReplicationError } from './errors';
import { ReplicaLink, type LinkRecord, type ReplicaLinkOptions, type ReplPosition, type SyncServer } from './link';
import type { PositionStore } from './position';
import { Spool, SpoolRecord, type SpoolEntry } from './spool';

/** Alibaba Cloud DTS's sync modes: snapshot then stream, snapshot only, stream only. */
export type SyncMode = 'full+incremental' | 'full' | 'incremental';

export type SessionPhase = 'connecting' | 'snapshot' | 'streaming' | 'reconnecting' | 'done' | 'failed' | 'stopped';

export interface ReplicaSessionOptions {
  shard: string;
  /** Where to connect; asked before every (re)connect, so a failover or a moved node is followed. */
  locate: () => Promise<{ host: string; port: number }>;
  link?: Pick<ReplicaLinkOptions, 'tls' | 'username' | 'password' | 'connectTimeoutMs' | 'listeningPort' | 'ackIntervalMs' | 'idleTimeoutMs'>;
  /** The names of PSYNC and SYNC on a node, asked at every (re)connect (see commandNames). */
  syncCommands?: (host: string, port: number) => Pick<ReplicaLinkOptions, 'psyncCommand' | 'syncCommand'>;
  /** Directory for this shard's spool (created; emptied on start and stop). */
  spoolDir: string;
  spoolMaxBytes?: number;
  positions: PositionStore;
  mode?: SyncMode;
  decodeValues?: boolean;
  bigKeyBytes?: number;
  /** A batch is handed on at this many operations, this many bytes, or this long after its first operation. */
  batchOps?: number;
  batchBytes?: number;
  batchLatencyMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * Receives the batches in order. The next batch waits until the promise settles: this is
   * the backpressure, the spool absorbs the rest. A rejection stops the session.
   */
  onBatch: (ops: Operation[], session: ReplicaSession, position: ReplPosition | null) => Promise<void>;
  /**
   * The stream moved to `position` without a batch (link chatter, or operations that
   * incremental mode leaves out): it is applied once every batch handed on before it is.
   * Where confirmedOnly holds, this must come back through confirm() as the batches do;
   * otherwise an idle source could never be confirmed up to what it received.
   */
  onPassed?: (session: ReplicaSession, position: ReplPosition) => void;
  /**
   * While this returns true, what is saved as the resume point and measured as applied (lag,
   * caughtUp) is only what `confirm()` was given (what a sink applied), not what was handed
   * on: after a crash, the replay starts from there. Asked at every save and every progress.
   */
  confirmedOnly?: () => boolean;
}

export interface SessionProgress {
  shard: string;
  phase: SessionPhase;
  node: string | null;
  /** What the node serving the sync said of itself (a replica serves its master's history); null until known or where INFO is refused. */
  server: SyncServer | null;
  /** PSYNC sent, the master not yet answering: a diskless sync held back (repl-diskless-sync-delay) or a BGSAVE running. */
  waitingForMaster: boolean;
  snapshot: SnapshotProgress;
  /** Replication offset of the last operation handed on, of the last byte received, and up to which everything is applied. */
  offset: number | null;
  received: number | null;
  applied: number | null;
  /**
   * Bytes of the replication stream received and not yet applied: applied means confirmed
   * by a sink where confirmedOnly holds, else handed on. Only what a full sync streams after
   * its snapshot counts in bytes (the snapshot shows in `snapshot`); see `caughtUp`.
   */
  lagBytes: number;
  /** How long the oldest byte received and not yet applied has waited (0 when caught up); a full sync counts from its start. */
  lagMs: number;
  /** Streaming, and everything received is applied. */
  caughtUp: boolean;
  spoolBytes: number;
  reconnects: number;
  lastError: string | null;
}

export interface SnapshotProgress {
  keys: number;
  bytes: number;
  /** The RDB's size, announced by a disk-based transfer only. */
  size: number | null;
  /** Keys the source held when the sync began (INFO keyspace), the measure of a diskless transfer. */
  expectedKeys: number | null;
  /** Of `size`, else of `expectedKeys` (then an estimate: keys are written and expire meanwhile). */
  percent: number | null;
  estimated: boolean;
  /** Since the RDB began to arrive; null before. */
  elapsedMs: number | null;
  keysPerSec: number | null;
  /** Time left at the rate so far, where a percent is known. */
  etaMs: number | null;
}

/** How far a snapshot is: by bytes where the size is known, else by keys against the count at its start. */
export function snapshotProgress(keys: number, bytes: number, size: number | null, expectedKeys: number | null, elapsedMs: number | null, complete = false): SnapshotProgress {
  let percent: number | null = null;
  if (complete) percent = 100;
  else if (size !== null && size > 0) percent = Math.min(100, (100 * bytes) / size);
  else if (expectedKeys !== null && expectedKeys > 0) percent = Math.min(99, (100 * keys) / expectedKeys);
  const seconds = elapsedMs === null ? 0 : elapsedMs / 1000;
  const keysPerSec = seconds > 0 ? Math.round(keys / seconds) : null;
  const etaMs = percent !== null && percent > 0 && elapsedMs !== null ? Math.round((elapsedMs * (100 - percent)) / percent) : null;
  return { keys, bytes, size, expectedKeys, percent, estimated: !complete && size === null && percent !== null, elapsedMs, keysPerSec, etaMs };
}

const POSITION_SAVE_MS = 1000;

/** Arrival times kept for the lag in ms (see ReplicaSession.arrivals). */
const MAX_ARRIVALS = 1000;

function encode(rec: LinkRecord): [number, Buffer] {
  switch (rec.kind) {
    case 'rdb':
      return [SpoolRecord.RDB_DATA, rec.data];
    case 'stream':
      return [SpoolRecord.STREAM, rec.data];
    case 'rdb-end':
      return [SpoolRecord.RDB_END, Buffer.from(JSON.stringify({ size: rec.size }))];
    case 'fullresync':
      return [SpoolRecord.FULLRESYNC, Buffer.from(JSON.stringify({ replid: rec.replid, offset: rec.offset }))];
    case 'continue':
      return [SpoolRecord.CONTINUE, Buffer.from(JSON.stringify({ replid: rec.replid, offset: rec.offset }))];
  }
}

function decode(e: SpoolEntry): LinkRecord {
  switch (e.type) {
    case SpoolRecord.RDB_DATA:
      return { kind: 'rdb', data: e.data };
    case SpoolRecord.STREAM:
      return { kind: 'stream', data: e.data };
    case SpoolRecord.RDB_END:
      return { kind: 'rdb-end', ...(JSON.parse(e.data.toString()) as { size: number }) };
    case SpoolRecord.FULLRESYNC:
      return { kind: 'fullresync', ...(JSON.parse(e.data.toString()) as ReplPosition) };
    case SpoolRecord.CONTINUE:
      return { kind: 'continue', ...(JSON.parse(e.data.toString()) as ReplPosition) };
    default:
      throw new ReplicationError('LOCAL', `spool record of unknown type ${e.type}`);
  }
}

/**
 * Replicates one source shard: keeps a replica link up (reconnecting with backoff and a
 * partial resync), spools what it receives, and hands the decoded operations on in
 * batches at the consumer's pace. Emits 'phase', 'retry' (error, delayMs), 'full-resync'
 * (reason), and 'end' (error | null) once, when it stops for good.
 */
export class ReplicaSession extends EventEmitter {
  phase: SessionPhase = 'connecting';
  reconnects = 0;
  lastError: ReplicationError | null = null;

  private readonly opts: ReplicaSessionOptions;
  private readonly decoder: ReplicationDecoder;
  private spool: Spool | null = null;
  private link: ReplicaLink | null = null;
  private node: string | null = null;
  /** Position of the last byte received (what a reconnect asks to continue from). */
  private received: ReplPosition | null = null;
  private handedOn: ReplPosition | null = null;
  private confirmed: ReplPosition | null = null;
  private savedAt = 0;
  private saveTimer: NodeJS.Timeout | null = null;
  /** The saved position's offset and replid as last written, so an unchanged one is not written again. */
  private saved: ReplPosition | null = null;
  /**
   * When stream bytes arrived: [offset after the chunk, ms], oldest first, pruned as they are
   * applied; a full sync adds its start (its offset, when it began).
   */
  private arrivals: Array<[number, number]> = [];
  private stopping = false;
  private ended = false;
  private wake: (() => void) | null = null;
  private loops: Promise<unknown> = Promise.resolve();
  private stopped: Promise<void> | null = null;
  /** When the current full sync's RDB began to arrive. */
  private snapshotStartedAt: number | null = null;
  /** Between a FULLRESYNC and the end of its RDB, as received (not as consumed). */
  private inSnapshot = false;
  /** After bad data from the source: spool records are skipped up to the next full sync. */
  private skipToFullResync = false;

  constructor(opts: ReplicaSessionOptions) {
    super();
    this.opts = opts;
    this.decoder = new ReplicationDecoder({ shard: opts.shard, bigKeyBytes: opts.bigKeyBytes, decodeValues: opts.decodeValues });
  }

  get mode(): SyncMode {
    return this.opts.mode ?? 'full+incremental';
  }

  async start(): Promise<void> {
    this.spool = await Spool.open(join(this.opts.spoolDir), { mode: 'reset', maxBytes: this.opts.spoolMaxBytes });
    this.received = this.mode === 'full' ? null : await this.opts.positions.load(this.opts.shard);
    this.handedOn = this.confirmed = this.saved = this.received;
    this.loops = Promise.all([this.linkLoop(), this.consumeLoop()]);
  }

  /** Stops the link and the hand-on, saves the position, and removes the spool. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.link?.close();
    await this.spool?.stop();
    await this.loops;
    await this.savePosition(true);
    await this.spool?.destroy();
    this.finish(null, 'stopped');
  }

  get progress(): SessionProgress {
    const d = this.decoder;
    const link = this.link;
    const size = link?.rdbSize ?? null;
    const received = this.received;
    const applied = this.applied;
    const comparable = applied !== null && received !== null && applied.replid === received.replid;
    let lagBytes = 0;
    if (comparable) lagBytes = Math.max(0, received.offset - applied.offset);
    else if (received !== null && this.arrivals.length > 0) lagBytes = Math.max(0, received.offset - this.arrivals[0][0]);
    return {
      shard: this.opts.shard,
      phase: this.phase,
      node: this.node,
      server: link?.server ?? null,
      waitingForMaster: link?.state === 'psync' || link?.state === 'waiting-rdb',
      snapshot: snapshotProgress(d.snapshotKeys, d.snapshotBytes, size, link?.server?.keys ?? null, this.snapshotStartedAt === null ? null : Date.now() - this.snapshotStartedAt, this.snapshotStartedAt !== null && d.phase === 'stream'),
      offset: this.handedOn?.offset ?? null,
      received: received?.offset ?? null,
      applied: applied?.offset ?? null,
      lagBytes,
      lagMs: this.arrivals.length === 0 ? 0 : Date.now() - this.arrivals[0][1],
      caughtUp: this.phase === 'streaming' && comparable && applied.offset >= received.offset,
      spoolBytes: this.spool?.stats.bytesOnDisk ?? 0,
      reconnects: this.reconnects,
      lastError: this.lastError?.message ?? null,
    };
  }

  private setPhase(p: SessionPhase): void {
    if (this.phase === p) return;
    this.phase = p;
    this.emit('phase', p);
  }

  private finish(err: ReplicationError | null, phase: SessionPhase): void {
    if (this.ended) return;
    this.ended = true;
    this.setPhase(phase);
    this.emit('end', err);
  }

  private fatal(err: unknown): void {
    const e = ReplicationError.from(err);
    this.lastError = e;
    this.stopping = true;
    this.wake?.();
    void this.link?.close();
    void this.spool?.stop();
    this.finish(e, 'failed');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async linkLoop(): Promise<void> {
    let delay = this.opts.backoffInitialMs ?? 500;
    const maxDelay = this.opts.backoffMaxMs ?? 30_000;
    /** A link got through once: a TLS mismatch seen after that is not one (see below). */
    let linked = false;
    while (!this.stopping) {
      let streamingSince = 0;
      try {
        const at = await this.opts.locate();
        this.node = `${at.host}:${at.port}`;
        const asked = this.received;
        const link = new ReplicaLink({
          ...this.opts.link,
          host: at.host,
          port: at.port,
          ...this.opts.syncCommands?.(at.host, at.port),
          // incremental only discards the snapshot: where the master can, it sends one without keys
          rdbFilterOnly: this.mode === 'incremental',
          position: asked,
          onRecord: (rec) => this.onRecord(rec),
        });
        this.link = link;
        const closed = new Promise<ReplicationError | null>((resolve) => link.once('close', resolve));
        link.once('fullresync', () => {
          if (asked !== null) this.emit('full-resync', `${this.node} could not continue from ${asked.replid}:${asked.offset} (history not in its backlog); a full sync starts again`);
        });
        link.once('rdb-begin', () => (this.snapshotStartedAt = Date.now()));
        link.once('continue', () => (streamingSince = Date.now()));
        link.once('rdb-end', () => (streamingSince = Date.now()));
        await link.start();
        linked = true;
        const err = await closed;
        if (err === null || this.stopping) return;
        throw err;
      } catch (err) {
        // A snapshot cut short cannot be continued: the master would stream on from its
        // offset as if the rest of the RDB had arrived. Only a new full sync is safe.
        if (this.inSnapshot) {
          this.received = null;
          this.inSnapshot = false;
        }
        if (this.stopping) return;
        const e = ReplicationError.from(err);
        this.lastError = e;
        // A port that took this link's TLS setting once still does: a connection dropped unanswered
        // later is something in between (a proxy whose server restarts), which heals.
        if (!e.retryable && !(linked && (e.code === 'TLS_REQUIRED' || e.code === 'TLS'))) {
          this.fatal(e);
          return;
        }
        if (streamingSince && Date.now() - streamingSince > 10_000) delay = this.opts.backoffInitialMs ?? 500;
        this.reconnects++;
        this.setPhase('reconnecting');
        this.emit('retry', e, delay);
        await this.sleep(delay);
        delay = Math.min(maxDelay, delay * 2);
      }
    }
  }

  /** Runs inside the socket's data handler: store at once, never wait. */
  private onRecord(rec: LinkRecord): void {
    const [type, data] = encode(rec);
    (this.spool as Spool).append(type, data);
    if (rec.kind === 'fullresync' || rec.kind === 'continue') this.received = { replid: rec.replid, offset: rec.offset };
    else if (rec.kind === 'stream' && this.received) {
      this.received.offset += rec.data.length;
      const last = this.arrivals[this.arrivals.length - 1];
      // one entry per 10 ms is precise enough for a lag in ms, and keeps the list short
      if (last === undefined || Date.now() - last[1] >= 10) this.arrivals.push([this.received.offset, Date.now()]);
      else last[0] = this.received.offset;
      // while nothing is applied (a sink stopped) the list would grow without end: two neighbours
      // become one with the older time, so the lag of the oldest byte stays exact, the rest coarser
      if (this.arrivals.length > MAX_ARRIVALS) {
        const a = this.arrivals;
        this.arrivals = [];
        for (let i = 0; i < a.length; i += 2) this.arrivals.push([a[Math.min(i + 1, a.length - 1)][0], a[i][1]]);
      }
    }
    if (rec.kind === 'fullresync') {
      this.inSnapshot = true;
      // a new offset space, and a snapshot to apply before anything of it counts as applied;
      // what of the old one waits unapplied keeps its time
      this.arrivals = [[rec.offset, this.arrivals[0]?.[1] ?? Date.now()]];
    }
    else if (rec.kind === 'rdb-end') this.inSnapshot = false;
  }

  private async consumeLoop(): Promise<void> {
    const spool = this.spool as Spool;
    const maxOps = this.opts.batchOps ?? 1000;
    const maxBytes = this.opts.batchBytes ?? 4 * 1024 * 1024;
    const latency = this.opts.batchLatencyMs ?? 20;
    let batch: Operation[] = [];
    let bytes = 0;
    let pending: Promise<SpoolEntry | null> | null = null;
    try {
      for (;;) {
        pending ??= spool.next();
        let entry: SpoolEntry | null | undefined;
        if (batch.length > 0) {
          const timer = new Promise<undefined>((r) => setTimeout(() => r(undefined), latency).unref());
          entry = await Promise.race([pending, timer]);
        } else {
          entry = await pending;
        }
        if (entry === undefined) {
          // nothing more arrived in time: hand on what there is (a transaction waits for its EXEC)
          if (!openTransaction(batch)) {
            await this.handOn(batch);
            batch = [];
            bytes = 0;
          }
          continue;
        }
        pending = null;
        if (entry === null) break;
        const rec = decode(entry);
        if (this.skipToFullResync && rec.kind !== 'fullresync') continue;
        this.skipToFullResync = false;
        let decoded: Operation[];
        try {
          decoded = this.decoder.push(rec);
        } catch (err) {
          // Corrupt data from the source (a bad RDB, garbage in the stream): say so, drop
          // what this sync produced but did not hand on, and start a clean full sync.
          this.resync(err);
          batch = [];
          bytes = 0;
          continue;
        }
        for (const op of decoded) {
          batch.push(op);
          bytes += operationBytes(op);
        }
        this.trackPhase();
        // link chatter (PING) moves the position without an operation to hand on
        if (batch.length === 0) await this.markHandedOn(true);
        if ((batch.length >= maxOps || bytes >= maxBytes) && !openTransaction(batch)) {
          await this.handOn(batch);
          batch = [];
          bytes = 0;
        }
        if (this.mode === 'full' && this.decoder.phase === 'stream') {
          await this.handOn(batch);
          await this.savePosition(true);
          this.stopping = true;
          await this.link?.close();
          this.finish(null, 'done');
          return;
        }
      }
      if (batch.length > 0 && !this.ended) await this.handOn(batch);
    } catch (err) {
      if (!this.stopping) this.fatal(err);
    }
  }

  private resync(err: unknown): void {
    const e = new ReplicationError('PROTOCOL', `${this.node}: bad data from the source, a full sync starts again: ${(err as Error).message}`, { cause: err });
    this.lastError = e;
    this.skipToFullResync = true;
    this.inSnapshot = true; // makes the reconnect ask for a full sync
    this.emit('full-resync', e.message);
    this.link?.abort(e);
  }

  private trackPhase(): void {
    const p = this.decoder.phase;
    if (p === 'snapshot') this.setPhase('snapshot');
    else if (p === 'stream' && this.link?.state === 'streaming') this.setPhase('streaming');
  }

  private async handOn(batch: Operation[]): Promise<void> {
    const ops = this.mode === 'incremental' ? batch.filter((o) => o.kind === 'command' && o.offset > this.snapshotOffset()) : batch;
    const position = this.decoder.phase === 'stream' && this.decoder.position ? { ...this.decoder.position } : null;
    if (ops.length > 0) await this.opts.onBatch(ops, this, position);
    await this.markHandedOn(ops.length === 0);
  }

  /**
   * Everything decoded so far is handed on: the position moves (and is saved now and then).
   * `passed`: no batch carries it, so it is handed to onPassed when it moved.
   */
  private async markHandedOn(passed: boolean): Promise<void> {
    const position = this.decoder.position;
    if (this.decoder.phase !== 'stream' || position === null) return;
    const moved = this.handedOn === null || this.handedOn.offset !== position.offset || this.handedOn.replid !== position.replid;
    this.handedOn = { ...position };
    if (passed && moved) this.opts.onPassed?.(this, { ...position });
    this.pruneArrivals();
    await this.savePosition(false);
  }

  /** Where everything before is applied: confirmed by a sink where one may consume the stream, else handed on. */
  private get applied(): ReplPosition | null {
    return this.opts.confirmedOnly?.() ? this.confirmed : this.handedOn;
  }

  /** Forgets the arrival times of what is applied; an applied position of another replication id says nothing of them. */
  private pruneArrivals(): void {
    const applied = this.applied;
    if (applied === null || this.received === null || applied.replid !== this.received.replid) return;
    let i = 0;
    while (i < this.arrivals.length && this.arrivals[i][0] <= applied.offset) i++;
    if (i > 0) this.arrivals.splice(0, i);
  }

  /** In incremental mode, what a forced full sync would copy is skipped: only later commands count. */
  private snapshotOffset(): number {
    return this.decoder.snapshotOffset ?? -1;
  }

  /** A sink applied everything up to `position` (see confirmedOnly). */
  async confirm(position: ReplPosition): Promise<void> {
    this.confirmed = { ...position };
    this.pruneArrivals();
    await this.savePosition(false);
  }

  /**
   * Saves at most once a second; a change inside that second is saved when it ends. What is
   * saved is chosen when it is written (see `applied`): a timer set while a batch was only
   * handed on writes what a sink confirmed by the time it fires, never that batch's position.
   */
  private async savePosition(now: boolean): Promise<void> {
    if (this.mode === 'full' && !now) return;
    const wait = this.savedAt + POSITION_SAVE_MS - Date.now();
    if (!now && wait > 0) {
      this.saveTimer ??= setTimeout(() => {
        this.saveTimer = null;
        this.savePosition(false).catch((err: unknown) => this.emit('position-error', err));
      }, wait).unref();
      return;
    }
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const position = this.applied;
    if (position === null || (this.saved !== null && this.saved.replid === position.replid && this.saved.offset === position.offset)) return;
    this.savedAt = Date.now();
    this.saved = { ...position };
    await this.opts.positions.save(this.opts.shard, { ...position });
  }
}

/** A batch must not end inside MULTI … EXEC: the destination applies it as one. */
function openTransaction(batch: Operation[]): boolean {
  const last = batch[batch.length - 1];
  return last !== undefined && last.kind === 'command' && last.tx !== 0 && last.name !== 'EXEC' && last.name !== 'DISCARD';
}
