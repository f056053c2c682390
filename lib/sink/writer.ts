import { applyCrossSlot, type Arg, type ClusterExecutor, type StepLog } from '../cluster/colocate';
import { SlotRouter } from '../cluster/router';
import { slotOf, slotsOfShard } from '../cluster/slots';
import { toSocketOptions, type EndpointConfig } from '../endpoint';
import { SLOT_CROSS, SLOT_NONE, type CommandOp, type KeyOp, type Operation } from '../ops/operation';
import { decodeRawValue } from '../rdb/parser';
import { rdbVersionOfServer } from '../rdb/versions';
import type { KeyValue } from '../rdb/types';
import type { CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import { Checkpoints } from './checkpoints';
import { isReplaySafe, TO_EVERY_MASTER, TX_MARKERS } from './commands';
import { NodeConnection, type ConnectionOptions, type ReplyFailure, type ReplyHandler } from './connection';
import { DestinationDbs, type Dropped } from './dbs';
import { SinkError } from './errors';
import { EvictionWatch } from './eviction';
import { destinationForm, PROBED_COMMANDS, probedCommandsOf } from './destination-forms';
import { FIELD_TTL_COMMANDS, fieldTtlCommandsOf, withoutFieldTtlCommand } from './field-ttl';
import { describeFunctionCommand, FUNCTION, hasFunctionsOf } from './functions';
import { dumpPayloadFor, restorableBy, restoreCommands } from './restore';
import { stagingKey, typedCommands, TypedLimits } from './typed';

/**
 * The seed service's conflict modes: "precheck and intercept" (the destination must be
 * empty), "ignore" (the source overwrites keys of the same name); and "skip existing".
 */
export type ConflictPolicy = 'intercept' | 'ignore' | 'skip-existing';

export interface WriterOptions {
  endpoint: EndpointConfig;
  conflict?: ConflictPolicy;
  /** Default true. False applies every operation plainly: at-least-once, faster. */
  exactlyOnce?: boolean;
  /** A snapshot key whose payload is bigger than this is written with typed commands. */
  restoreMaxBytes?: number;
  /** Told each time the writer tries to connect again after losing the destination, with why. */
  onReconnect?: (cause: Error, attempt: number) => void;
  /** Accept a destination whose maxmemory-policy evicts keys (see eviction.ts); default false: refused. */
  allowEviction?: boolean;
  /** Told each time the destination evicted more keys (the count since the start, every master summed). */
  onEvicted?: (evicted: number, detail: string) => void;
  /** Told what cannot be checked about eviction on a master (once per master). */
  onEvictionUnchecked?: (what: string) => void;
  /**
   * Told each FUNCTION command dropped because the destination has no FUNCTION (before 7.0),
   * with what it did (describeFunctionCommand), so that it is never dropped silently.
   */
  onDroppedFunction?: (what: string) => void;
  /**
   * Told the first time an operation of each label (see dbs.ts) is dropped because the
   * destination has no db for it, with what was dropped and what to do: never silently.
   */
  onDropped?: (label: string, why: string) => void;
}

export interface BatchContext {
  /** Names the pipeline in the destination's checkpoints (the source node's id). */
  source: string;
  /**
   * The slot router's output the batch left by. Behind an output other than the first, a
   * full sync's snapshot-begin only tells this sink that the applied offsets it holds belong
   * to the sync before: the sink behind the first output checks or empties the destination,
   * once, and records the new sync (several sinks doing that at once would race).
   */
  partition?: number;
}

export interface WriterStats {
  keys: number;
  commands: number;
  skippedReplays: number;
  skippedExisting: number;
  typedKeys: number;
  droppedFieldTtls: number;
  /** FUNCTION commands (library loads, deletes, flushes, restores) a destination before 7.0 cannot run: see functions.ts. */
  droppedFunctions: number;
  /**
   * Pending entries of a stream written with typed commands that could not be made again:
   * their entries were deleted, and XCLAIM only claims an entry that exists (see
   * deletedPending in typed.ts for the ones it can still make).
   */
  lostPendingEntries: number;
  redirects: number;
  /** Commands sent to the node importing their slot (ASK), while the slot was migrating. */
  asks: number;
  /** Keys the destination masters evicted, and expired, since the sink started (INFO stats; see eviction.ts). */
  evictedKeys: number;
  expiredKeys: number;
  /** Operations dropped for want of a db on the destination, by label: `db <n>`, SWAPDB, MOVE, COPY (see dbs.ts). */
  dropped: Record<string, number>;
}

const FULL_SLOTS = 16384;

/**
 * Commands of newer servers that a source may replicate and an older destination may lack:
 * the writer asks the destination for them when it connects, then rewrites (hash field TTLs,
 * see withoutFieldTtlCommand; 6.2's and 7.0's, see destinationForm) or drops and counts
 * (FUNCTION, see functions.ts) what it lacks.
 */
const NEWER_COMMANDS: readonly string[] = [...FIELD_TTL_COMMANDS, FUNCTION, ...PROBED_COMMANDS];

/** Replies of a cluster whose slots move or are moving (resharding, failover): reload the slot map and try again. */
const REDIRECTS = new Set(['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN', 'READONLY', 'LOADING']);
/**
 * Tries of one command or group through redirections: about 60 s with the backoff of
 * followRedirect, for a group whose keys a migration has split between two nodes (TRYAGAIN
 * until they are together again; commands that ASK alone are sent on, see followAsks) or a
 * failover that takes the cluster's node timeout and an election.
 */
const REDIRECT_TRIES = 310;
/** How long a lost destination is tried again before the writer stops (the source waits meanwhile). */
const RECONNECT_FOR_MS = 5 * 60_000;

/**
 * Batches of assignments may be written while earlier batches wait for their replies (see
 * `apply`); this many at most, so that a destination that stops answering stops the sink
 * after a bounded amount of work.
 */
const MAX_IN_FLIGHT = 4;

interface Group {
  slot: number;
  /** Its run of operations in the checkpoints (see Checkpoints): the slot, or for a standalone destination the router's output. */
  lane: number;
  conn: NodeConnection;
  ops: Operation[];
  guarded: boolean;
}

/** A batch written while others wait for their replies. */
interface InFlight {
  ops: Operation[];
  ctx: BatchContext;
  /** Per connection it wrote to, the number of commands sent up to its last one. */
  marks: Map<NodeConnection, number>;
  /** Settles once its replies are in and checked (or it was applied again by a recovery). */
  done: Promise<void>;
  /** Applied again, in order, by the recovery of an earlier batch: its first replies no longer count. */
  replayed: boolean;
}

/**
 * Applies batches of operations to a standalone or cluster destination, in order per key,
 * pipelined per node. Exactly once: see commands.ts and checkpoints.ts for the rule.
 */
export class DestinationWriter {
  readonly stats: WriterStats = { keys: 0, commands: 0, skippedReplays: 0, skippedExisting: 0, typedKeys: 0, droppedFieldTtls: 0, droppedFunctions: 0, lostPendingEntries: 0, redirects: 0, asks: 0, evictedKeys: 0, expiredKeys: 0, dropped: {} };
  private readonly opts: Required<Omit<WriterOptions, 'endpoint' | 'onReconnect' | 'onDroppedFunction' | 'onDropped' | 'allowEviction' | 'onEvicted' | 'onEvictionUnchecked'>> & Pick<WriterOptions, 'endpoint' | 'onReconnect' | 'onDroppedFunction' | 'onDropped'>;
  private readonly eviction: EvictionWatch;
  private readonly limits = new TypedLimits();
  private cluster = false;
  private version: [number, number] = [0, 0];
  private rdbVersion = 0;
  /** Which of NEWER_COMMANDS the destination has (see withoutFieldTtlCommand, functions.ts). */
  private knownCommands: ReadonlySet<string> = new Set();
  /** The dbs the destination has (see dbs.ts). */
  private dbs = new DestinationDbs(Infinity, false);
  private conns = new Map<string, NodeConnection>();
  private slotMap: NodeConnection[] = [];
  private masters: NodeConnection[] = [];
  private checkpoints!: Checkpoints;
  /** Current db of each standalone connection, to send SELECT only when it changes. */
  private dbOf = new Map<NodeConnection, number>();
  /** Splits cross-slot commands for a cluster destination when no slot router did. */
  private readonly router = new SlotRouter();
  /** Settles when the previous batch is written: batches are written in the order given. */
  private sendTurn: Promise<void> = Promise.resolve();
  /** Batches written and not yet confirmed, oldest first; their checks run in this order too. */
  private inFlight: InFlight[] = [];
  private lastCheck: Promise<void> = Promise.resolve();
  /** While set, a redirected batch and the ones after it are being applied again: nothing new is written. */
  private recovery: Promise<void> | null = null;
  /** The failure that stopped this writer: later batches are not applied. */
  private failure: Error | null = null;
  private closed = false;

  constructor(opts: WriterOptions) {
    this.opts = {
      endpoint: opts.endpoint,
      conflict: opts.conflict ?? 'ignore',
      exactlyOnce: opts.exactlyOnce ?? true,
      restoreMaxBytes: opts.restoreMaxBytes ?? 64 * 1024 * 1024,
      onReconnect: opts.onReconnect,
      onDroppedFunction: opts.onDroppedFunction,
      onDropped: opts.onDropped,
    };
    this.eviction = new EvictionWatch({ allow: opts.allowEviction === true, onEvicted: opts.onEvicted, onUnchecked: opts.onEvictionUnchecked }, this.stats);
  }

  get isCluster(): boolean {
    return this.cluster;
  }

  /**
   * Connects, learns the destination's version and (cluster) slot map. A destination that
   * cannot be reached yet is tried again as a lost one is (see reconnect); refused
   * credentials, a TLS mismatch or an evicting destination are not, since trying again
   * cannot cure them (SinkError.permanent).
   */
  async connect(): Promise<void> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        if (this.closed || (err instanceof SinkError && err.permanent) || Date.now() - since > RECONNECT_FOR_MS) throw err;
        for (const c of this.conns.values()) c.close();
        this.conns.clear();
        this.opts.onReconnect?.(err instanceof Error ? err : new Error(String(err)), attempt);
        await reconnectPause(attempt);
      }
    }
  }

  private async connectOnce(): Promise<void> {
    const first = await this.openSeed();
    const info = String(await first.call(['INFO', 'server'])) + String(await first.call(['INFO', 'cluster']));
    const ver = /redis_version:(\d+)\.(\d+)/.exec(info);
    this.version = ver ? [Number(ver[1]), Number(ver[2])] : [0, 0];
    this.rdbVersion = rdbVersionOfServer(this.version);
    this.cluster = /cluster_enabled:1/.test(info);
    this.knownCommands = await this.newerCommandsOf(first);
    this.dbs = new DestinationDbs(this.cluster ? 1 : await this.databasesOf(first), this.cluster);
    if (this.cluster) await this.refreshSlots();
    else {
      this.masters = [first];
      this.slotMap = new Array(FULL_SLOTS).fill(first);
    }
    this.checkpoints = new Checkpoints(this.cluster, (slot) => this.nodeFor(slot), this.masters, (slot, args) => this.callAt(slot, args));
    await this.eviction.admit(this.masters);
    // masters that appear later (a failover, a resharding) are checked when the watch first sees them
    this.eviction.start(() => this.masters, (err) => (this.failure ??= err));
  }

  /**
   * Which of NEWER_COMMANDS the destination has, as it says (COMMAND INFO: no entry for a
   * command it lacks; 8.0's previews have 7.4's and call themselves 7.9), or by its version
   * when it refuses to say.
   */
  private async newerCommandsOf(c: NodeConnection): Promise<Set<string>> {
    const reply = await c.call(['COMMAND', 'INFO', ...NEWER_COMMANDS]);
    if (Array.isArray(reply)) return new Set(NEWER_COMMANDS.filter((_, i) => Array.isArray(reply[i])));
    const known = fieldTtlCommandsOf(this.version);
    if (hasFunctionsOf(this.version)) known.add(FUNCTION);
    for (const name of probedCommandsOf(this.version)) known.add(name);
    return known;
  }

  /**
   * How many dbs a server has: its `databases`, or where CONFIG is refused (managed services
   * rename it) the number SELECT takes, found by halving; 1 where SELECT is refused too, as
   * then only the db a connection starts in can be written.
   */
  private async databasesOf(c: NodeConnection): Promise<number> {
    const config = await c.call(['CONFIG', 'GET', 'databases']);
    if (Array.isArray(config) && config.length === 2) return Number(String(config[1]));
    if ((await c.call(['SELECT', 0])) instanceof RespError) return 1;
    // `databases` is at most INT_MAX (config.c); lo is a db SELECT takes, none above hi is
    let [lo, hi] = [0, 2 ** 31 - 2];
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if ((await c.call(['SELECT', mid])) instanceof RespError) hi = mid - 1;
      else lo = mid;
    }
    await c.call(['SELECT', 0]);
    return lo + 1;
  }

  close(): void {
    this.closed = true;
    this.eviction.stop();
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }

  /**
   * Applies one batch (all of it, or rejects with a SinkError); resolves once every reply is
   * in. Batches are applied in the order of the calls, and a caller need not wait for one to
   * resolve before handing in the next: a batch of assignments only (commands.ts) is written
   * at once, while earlier ones still wait for replies, so the destination works while this
   * process prepares the next batch. Anything else (a guarded group, a transaction, a barrier)
   * waits until everything before it is confirmed, and is written alone. That keeps the
   * exactly-once rule: a checkpoint is only ever written after every earlier write succeeded,
   * so a failed write can never end up below a checkpoint; what overlaps is safe to apply again.
   */
  async apply(ops: Operation[], ctx: BatchContext): Promise<void> {
    const previous = this.sendTurn;
    let written!: () => void;
    this.sendTurn = new Promise((resolve) => (written = resolve));
    let applied: { done: Promise<void> };
    try {
      await previous;
      applied = await this.write(ops, ctx);
    } finally {
      written();
    }
    return applied.done;
  }

  /** Writes a batch; resolves once it is written, with the promise of its confirmation. */
  private async write(ops: Operation[], ctx: BatchContext): Promise<{ done: Promise<void> }> {
    if (this.failure) throw this.failure;
    ops = this.withinDbs(ops);
    if (this.cluster && ops.some((o) => (o.kind === 'command' || o.kind === 'key') && o.slot === undefined)) ops = this.router.route(ops);
    await this.noteMovedKeys(ops, ctx);
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.lostConnection()) {
        // lost while no batch was there to notice: connect again once everything before is settled
        await this.settled();
        if (this.lostConnection()) await this.reconnect(new Error('a connection to the destination closed'));
      } else if (!this.overlappable(ops, ctx)) {
        await this.settled();
        const done = this.applyAlone(ops, ctx).catch((err: unknown) => this.stop(err));
        this.lastCheck = done.catch(() => undefined);
        await done;
        return { done };
      } else if (this.recovery) await this.recovery;
      else if (this.inFlight.length >= MAX_IN_FLIGHT) await this.inFlight[0].done.catch(() => undefined);
      else break;
    }
    // from here to the end of writing nothing awaits: no other batch, and no socket event, comes in between
    const batch: InFlight = { ops, ctx, marks: new Map(), done: Promise.resolve(), replayed: false };
    for (const g of this.group(ops, ctx)) {
      this.sendGroup(g, ctx);
      batch.marks.set(g.conn, g.conn.sent);
    }
    this.inFlight.push(batch);
    batch.done = this.lastCheck.then(() => this.confirm(batch)).catch((err: unknown) => this.stop(err));
    this.lastCheck = batch.done.catch(() => undefined);
    return { done: batch.done };
  }

  /** The batch as the destination's dbs can take it (see dbs.ts); the same array where nothing changes. */
  private withinDbs(ops: Operation[]): Operation[] {
    let out: Operation[] | null = null;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (!this.dbs.concerns(op)) {
        out?.push(op);
        continue;
      }
      const { op: fitted, dropped } = this.dbs.fit(op);
      out ??= ops.slice(0, i);
      if (fitted !== null) out.push(fitted);
      if (dropped !== null) this.noteDropped(dropped);
    }
    return out ?? ops;
  }

  private noteDropped(d: Dropped): void {
    const n = this.stats.dropped[d.label] ?? 0;
    this.stats.dropped[d.label] = n + 1;
    if (n === 0) this.opts.onDropped?.(d.label, d.why);
  }

  private stop(err: unknown): never {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  }

  /** Resolves when every batch written so far is confirmed; rejects if one failed. */
  private async settled(): Promise<void> {
    await this.lastCheck;
    if (this.failure) throw this.failure;
  }

  /**
   * A cluster source's shard owns a set of slots; a key of it whose name hashes elsewhere was
   * renamed on the way. Checkpoints records that once, before such a key is written.
   */
  private async noteMovedKeys(ops: Operation[], ctx: BatchContext): Promise<void> {
    let shard: string | null = null;
    let owned: Uint8Array | null = null;
    for (const op of ops) {
      if (op.kind !== 'key' && op.kind !== 'command') continue;
      if (op.shard !== shard) {
        shard = op.shard;
        owned = this.checkpoints.movedKeys(ctx.source, shard) ? null : slotsOfShard(shard);
      }
      if (owned === null) continue;
      const key = op.kind === 'key' ? op.key : op.keys.length > 0 ? op.args[op.keys[0]] : undefined;
      if (key !== undefined && owned[slotOf(key)] === 0) {
        await this.checkpoints.noteMovedKeys(ctx.source, op.shard);
        owned = null;
      }
    }
  }

  /** Whether a batch may be written while earlier ones wait for their replies (see `apply`). */
  private overlappable(ops: Operation[], ctx: BatchContext): boolean {
    if (ops.length === 0 || !this.checkpoints.prepared(ctx.source, ops[0].shard)) return false;
    const shard = ops[0].shard;
    for (const op of ops) {
      if (op.kind !== 'key' && op.kind !== 'command') return false;
      if (op.shard !== shard) return false;
      const slot = this.slotOf(op);
      if (slot === SLOT_NONE || slot === SLOT_CROSS) return false;
      if (op.kind === 'command' && this.guards(op)) return false;
    }
    return true;
  }

  /** A command that must be applied atomically with its slot's checkpoint (see commands.ts). */
  private guards(op: CommandOp): boolean {
    return op.tx !== 0 || TX_MARKERS.has(op.name) || (this.opts.exactlyOnce && !isReplaySafe(op.name, op.args));
  }

  /** Checks the replies of a batch written with others in flight, after those before it. */
  private async confirm(batch: InFlight): Promise<void> {
    if (this.failure) throw this.failure;
    if (batch.replayed) return;
    const conns = [...batch.marks.keys()];
    const replies = await Promise.allSettled(conns.map((c) => c.replied(batch.marks.get(c))));
    let lost = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!lost && this.triage(conns.flatMap((c) => c.takeFailures(batch.marks.get(c)))).length === 0) {
      this.inFlight.shift();
      return;
    }
    // Some writes were redirected (the cluster's slots moved), or a connection was lost.
    // Later batches were written after this one and may have landed; all of them are
    // assignments, so this batch and every later one are applied again, in order, once the
    // slot map is reloaded (and the connections are back).
    const later = this.inFlight.splice(0);
    let recovered!: () => void;
    this.recovery = new Promise((resolve) => (recovered = resolve));
    try {
      // every reply of the first attempt is in (or its connection gone) before anything is sent again
      const all = [...this.conns.values()];
      const drained = await Promise.allSettled(all.map((c) => c.replied()));
      lost ??= drained.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const c of all) c.takeFailures();
      if (lost) await this.reconnect(lost.reason);
      else {
        this.stats.redirects++;
        await this.refreshSlots();
      }
      for (const b of later) {
        b.replayed = true;
        await this.applySegment(b.ops, b.ctx);
      }
    } finally {
      this.recovery = null;
      recovered();
    }
  }

  /**
   * A batch with nothing else in flight: the barriers, the guarded groups. A connection lost
   * on the way is made again and the whole batch applied again: what landed is skipped by its
   * checkpoint (read anew from the destination) or is an assignment.
   */
  private async applyAlone(ops: Operation[], ctx: BatchContext): Promise<void> {
    for (;;) {
      try {
        await this.applyAloneOnce(ops, ctx);
        return;
      } catch (err) {
        if (!this.lostConnection()) throw err;
        await this.reconnect(err);
      }
    }
  }

  private async applyAloneOnce(ops: Operation[], ctx: BatchContext): Promise<void> {
    let segment: Operation[] = [];
    for (const op of ops) {
      if (op.kind === 'command' && TX_MARKERS.has(op.name)) continue;
      const slot = this.slotOf(op);
      if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end' || slot === SLOT_NONE || slot === SLOT_CROSS) {
        // a barrier: everything before it is applied first, everything after waits for it
        await this.applySegment(segment, ctx);
        segment = [];
        await this.applyBarrier(op, slot, ctx);
      } else {
        segment.push(op);
      }
    }
    await this.applySegment(segment, ctx);
  }

  /** The first seed of the endpoint that accepts a connection. */
  private async openSeed(): Promise<NodeConnection> {
    const ep = this.opts.endpoint;
    const seeds = ep.mode === 'cluster' ? ep.seeds : [{ host: ep.host, port: ep.port }];
    let last: unknown;
    for (const s of seeds) {
      try {
        return await this.open(s.host, s.port);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** Whether a connection to the destination broke (rather than the destination refusing a command). */
  private lostConnection(): boolean {
    for (const c of this.conns.values()) if (c.broken !== null) return true;
    return false;
  }

  /**
   * After a lost connection: connects again (with the slot map of a cluster), retrying with
   * backoff for up to RECONNECT_FOR_MS, and forgets the checkpoints read so far, since only
   * the destination knows whether a transaction in flight was applied.
   */
  private async reconnect(cause: unknown): Promise<void> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw cause;
      this.opts.onReconnect?.(cause instanceof Error ? cause : new Error(String(cause)), attempt);
      await reconnectPause(attempt);
      for (const [name, c] of this.conns) {
        if (c.broken === null) continue;
        c.close();
        this.conns.delete(name);
        this.dbOf.delete(c);
      }
      try {
        if (this.cluster) {
          if (this.conns.size === 0) await this.openSeed();
          await this.refreshSlots();
        } else {
          const c = await this.openSeed();
          this.masters = [c];
          this.slotMap = new Array(FULL_SLOTS).fill(c);
          this.checkpoints.setMasters(this.masters);
        }
        this.checkpoints.forgetAll();
        return;
      } catch (err) {
        cause = err;
        if (Date.now() - since > RECONNECT_FOR_MS) {
          throw new SinkError('CONNECTION', `the destination could not be reached again for ${RECONNECT_FOR_MS / 1000} s: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }

  private async open(host: string, port: number): Promise<NodeConnection> {
    const name = `${host}:${port}`;
    const existing = this.conns.get(name);
    if (existing && !existing.broken) return existing;
    const so = toSocketOptions(this.opts.endpoint, host, port);
    const opts: ConnectionOptions = { host, port, tls: so.tls ? so.connect : null, username: so.auth?.username, password: so.auth?.password, connectTimeoutMs: so.connectTimeoutMs };
    const conn = new NodeConnection(opts);
    await conn.connect();
    this.conns.set(name, conn);
    this.dbOf.set(conn, 0);
    return conn;
  }

  /** Learns which master serves which slot (CLUSTER SLOTS). */
  private async refreshSlots(): Promise<void> {
    let reply: RespValue | undefined;
    let lastErr: unknown;
    for (const c of [...this.conns.values()].filter((x) => !x.broken)) {
      try {
        reply = await c.call(['CLUSTER', 'SLOTS']);
        if (!(reply instanceof RespError)) break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!Array.isArray(reply)) throw new SinkError('CONNECT', `the destination cluster's slot map cannot be read: ${String(lastErr ?? reply)}`);
    const map: NodeConnection[] = new Array(FULL_SLOTS);
    const masters = new Set<NodeConnection>();
    for (const range of reply as RespValue[][]) {
      const [from, to, master] = range as [number, number, RespValue[]];
      const host = String(master[0]) || this.seedHost();
      const conn = await this.open(host, Number(master[1]));
      masters.add(conn);
      for (let s = from; s <= to; s++) map[s] = conn;
    }
    const missing = map.findIndex((c) => c === undefined);
    if (map.length !== FULL_SLOTS || missing >= 0 || masters.size === 0) {
      throw new SinkError('CLUSTERDOWN', `the destination cluster does not serve every slot (slot ${missing} has no master)`);
    }
    this.slotMap = map;
    this.masters = [...masters];
    this.checkpoints?.setMasters(this.masters);
  }

  private seedHost(): string {
    const ep = this.opts.endpoint;
    return ep.mode === 'cluster' ? ep.seeds[0].host : ep.host;
  }

  /** One command on the master of `slot`, following redirections (see REDIRECTS). */
  private async callAt(slot: number, args: readonly CommandArg[]): Promise<RespValue> {
    for (let attempt = 1; ; attempt++) {
      let reply = await this.nodeFor(slot).call(args);
      if (this.cluster && reply instanceof RespError && reply.code === 'ASK') {
        // the slot is migrating and the key is not (or no longer) here: the importing node takes it behind ASKING
        this.stats.asks++;
        const to = await this.askedNode(reply);
        to.send(['ASKING']);
        reply = await to.call(args);
      }
      if (!this.redirected(reply, attempt)) return reply;
      await this.followRedirect(attempt);
    }
  }

  private redirected(reply: RespValue | undefined, attempt: number): boolean {
    return this.cluster && reply instanceof RespError && REDIRECTS.has(reply.code) && attempt < REDIRECT_TRIES;
  }

  private async followRedirect(attempt: number): Promise<void> {
    this.stats.redirects++;
    await new Promise((r) => setTimeout(r, Math.min(10 * attempt, 200)));
    await this.refreshSlots();
  }

  private nodeFor(slot: number): NodeConnection {
    return this.slotMap[this.cluster ? slot : 0];
  }

  private slotOf(op: Operation): number {
    if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end') return SLOT_NONE;
    if (!this.cluster) return op.kind === 'command' && op.keys.length === 0 ? SLOT_NONE : 0;
    if (op.slot !== undefined) return op.slot;
    if (op.kind === 'key') return slotOf(op.key);
    if (op.keys.length === 0) return SLOT_NONE;
    const s = slotOf(op.args[op.keys[0]]);
    for (let i = 1; i < op.keys.length; i++) if (slotOf(op.args[op.keys[i]]) !== s) return SLOT_CROSS;
    return s;
  }

  // ---- the common case: keyed operations, grouped per slot, pipelined per node ----

  private async applySegment(ops: Operation[], ctx: BatchContext): Promise<void> {
    if (ops.length === 0) return;
    for (let attempt = 1; ; attempt++) {
      let redirects: ReplyFailure[];
      try {
        await this.checkpoints.prepare(ctx.source, ops[0].shard);
        const groups = this.group(ops, ctx);
        const touched = new Set<NodeConnection>();
        for (const g of groups) {
          this.sendGroup(g, ctx);
          touched.add(g.conn);
        }
        redirects = await this.collect([...touched]);
        if (redirects.length > 0 && redirects.every((f) => f.error.code === 'ASK')) redirects = await this.followAsks(groups, redirects, ctx);
      } catch (err) {
        if (!this.lostConnection()) throw err;
        await this.reconnect(err);
        continue;
      }
      if (redirects.length === 0) return;
      if (attempt >= REDIRECT_TRIES) throw SinkError.redirected(attempt, redirects[0].error, redirects[0].tag);
      // re-apply what did not land: already applied guarded groups are skipped by their checkpoint,
      // unguarded ones are assignments and may run twice
      await this.followRedirect(attempt);
    }
  }

  private group(ops: Operation[], ctx: BatchContext): Group[] {
    const bySlot = new Map<number, Group>();
    const partition = ctx.partition ?? 0;
    let shard: string | null = null;
    let applied = this.checkpoints.appliedIn(ctx.source, '');
    for (const op of ops) {
      const slot = this.slotOf(op);
      const lane = this.cluster ? slot : partition;
      if (op.kind === 'command') {
        if (op.shard !== shard) {
          shard = op.shard;
          applied = this.checkpoints.appliedIn(ctx.source, shard);
        }
        if (applied(lane, op.offset)) {
          this.stats.skippedReplays++;
          continue;
        }
      }
      if (this.cluster && (op.kind === 'key' || op.kind === 'command') && op.slot !== undefined) this.checkRoutedSlot(op, slot);
      let g = bySlot.get(slot);
      if (!g) {
        g = { slot, lane, conn: this.nodeFor(slot), ops: [], guarded: false };
        bySlot.set(slot, g);
      }
      g.ops.push(op);
      if (op.kind === 'command' && !g.guarded && this.guards(op)) g.guarded = true;
    }
    return [...bySlot.values()];
  }

  /**
   * A slot the router set must still be the slot of the keys: a function node that renames
   * keys after the router would otherwise send them to a node that refuses them (CROSSSLOT,
   * MOVED), or, behind several partitions, let two sinks write one slot's checkpoint.
   */
  private checkRoutedSlot(op: KeyOp | CommandOp, slot: number): void {
    const key = op.kind === 'key' ? op.key : op.args[op.keys[0]];
    if (key === undefined || slotOf(key) === slot) return;
    throw new SinkError(
      'SLOT',
      `key "${key.toString('latin1').slice(0, 80)}" (source offset ${op.offset}) hashes to slot ${slotOf(key)}, but the slot router put it in slot ${slot}: keys were changed after the router; change them before it (see the README on function nodes)`,
    );
  }

  private sendGroup(g: Group, ctx: BatchContext): void {
    const c = g.conn;
    if (g.guarded) c.send(['MULTI'], null, g);
    let last: Operation | null = null;
    for (const op of g.ops) {
      last = op;
      if (op.kind === 'key') this.sendKey(c, op, g);
      else if (op.kind === 'command') this.sendCommand(c, op, g);
    }
    if (g.guarded && last !== null && last.kind === 'command') {
      this.selectDb(c, 0, g);
      c.send(this.checkpoints.writeCommand(ctx.source, last.shard, g.lane, last.offset), null, g);
      const done = { source: ctx.source, shard: last.shard, offset: last.offset };
      c.send(['EXEC'], (reply) => this.onExec(reply, g, done), g);
    }
  }

  /**
   * ASK: the slot is migrating, and these commands' keys are no longer (or not yet) on the
   * node that owns it, so they go to the node importing it, each behind ASKING. A key missing
   * on the migrating node cannot come back there (every later command on it is asked too), so
   * what an ASK names is the tail of that key's commands, and sending just that tail, in order,
   * keeps each key's order without waiting for the migration to end. A guarded group was
   * refused whole (EXECABORT, or its EXEC was asked): it goes whole, ASKING before its MULTI,
   * which keeps the flag for every queued command. Returns the redirections of that second
   * try (e.g. TRYAGAIN for a group whose keys the migration has split between the nodes).
   */
  private async followAsks(groups: Group[], asks: ReplyFailure[], ctx: BatchContext): Promise<ReplyFailure[]> {
    this.stats.asks += asks.length;
    const asked = new Map<unknown, number>();
    const targets = new Map<number, NodeConnection>();
    for (const f of asks) {
      asked.set(f.tag, (asked.get(f.tag) ?? 0) + 1);
      const { slot } = askTarget(f.error);
      if (!targets.has(slot)) targets.set(slot, await this.askedNode(f.error));
    }
    const touched = new Set<NodeConnection>();
    for (const g of groups) {
      const to = targets.get(g.slot);
      if (to === undefined) continue;
      touched.add(to);
      if (g.guarded) {
        to.send(['ASKING'], null, g);
        this.sendGroup({ ...g, conn: to }, ctx);
        continue;
      }
      for (const op of g.ops) {
        const n = asked.get(op) ?? 0;
        if (n === 0) continue;
        if (op.kind === 'command') {
          for (const cmd of (this.rewritten(op, new TypedLimits()) ?? [[op.name, ...op.args]]).slice(-n)) {
            to.send(['ASKING'], null, op);
            to.send(cmd, null, op);
          }
        } else if (op.kind === 'key') {
          for (const cmd of this.keyCommands(op, new TypedLimits()).slice(-n)) {
            to.send(['ASKING'], null, op);
            to.send(cmd, this.replyTo(cmd, this.keyReplies(to, op), to, op), op);
          }
        }
      }
    }
    return this.collect([...touched]);
  }

  /** A connection to the node an ASK names (an unknown host is the seeds' host). */
  private askedNode(ask: RespError): Promise<NodeConnection> {
    const { host, port } = askTarget(ask);
    return this.open(host === '' || host === '?' ? this.seedHost() : host, port);
  }

  private onExec(reply: RespValue, g: Group, done: { source: string; shard: string; offset: number }): void {
    // EXECABORT (a queued command was refused, e.g. MOVED): the error of that command is in `errors`.
    if (reply instanceof RespError && reply.code !== 'EXECABORT') g.conn.reportError(reply, g);
    if (!Array.isArray(reply)) return;
    // the group is applied, checkpoint included: a retry of this batch must skip it
    this.checkpoints.noteApplied(done.source, done.shard, g.lane, done.offset);
    for (const r of reply) if (r instanceof RespError) g.conn.reportError(r, g);
  }

  private selectDb(c: NodeConnection, db: number, tag: unknown): void {
    if (this.cluster || this.dbOf.get(c) === db) return;
    c.send(['SELECT', db], null, tag);
    this.dbOf.set(c, db);
  }

  private sendCommand(c: NodeConnection, op: CommandOp, g: Group): void {
    this.selectDb(c, op.db, g);
    const commands = this.rewritten(op, this.limits);
    if (commands === null) c.sendNamed(op.name, op.args, op);
    else {
      for (const cmd of commands) c.send(cmd, null, op);
      this.stats.droppedFieldTtls = this.limits.droppedFieldTtls;
    }
    this.stats.commands++;
  }

  /**
   * What the destination runs for a command of the stream in a form it lacks (of a newer
   * server: see destinationForm and withoutFieldTtlCommand), its dropped field TTLs counted in
   * `limits` as the snapshot's are; null when it runs the command as it is.
   */
  private rewritten(op: Pick<CommandOp, 'name' | 'args' | 'db' | 'offset'>, limits: TypedLimits): CommandArg[][] | null {
    const form = destinationForm(op, { version: this.version, rdbVersion: this.rdbVersion, commands: this.knownCommands }, limits);
    if (form !== null) return form;
    const r = withoutFieldTtlCommand(op.name, op.args, this.knownCommands);
    if (r === null) return null;
    limits.droppedFieldTtls += r.droppedTtls;
    return r.commands;
  }

  private sendKey(c: NodeConnection, op: KeyOp, g: Group): void {
    this.selectDb(c, op.db, g);
    if (op.chunk === null || op.chunk.index === 0) this.stats.keys++;
    if (!this.restorable(op)) this.stats.typedKeys++;
    const onReply = this.keyReplies(c, op);
    for (const cmd of this.keyCommands(op, this.limits)) c.send(cmd, this.replyTo(cmd, onReply, c, op), op);
    this.stats.droppedFieldTtls = this.limits.droppedFieldTtls;
  }

  private restorable(op: KeyOp): boolean {
    return op.raw !== null && restorableBy(op, this.rdbVersion) && op.raw.length <= this.opts.restoreMaxBytes;
  }

  /** A snapshot key as commands: one RESTORE where the destination takes the payload, typed commands otherwise. */
  private keyCommands(op: KeyOp, limits: TypedLimits): CommandArg[][] {
    if (this.restorable(op)) {
      const replace = this.opts.conflict !== 'skip-existing';
      const payload = dumpPayloadFor({ rdbType: op.rdbType, raw: op.raw as Buffer, rdbVersion: op.rdbVersion }, this.rdbVersion);
      return restoreCommands(op, payload, replace, this.version, Date.now()) ?? [];
    }
    const value = (op.value === null ? decodeRawValue(op.rdbType, op.raw as Buffer, op.rdbVersion) : op) as KeyValue;
    const part = { first: op.chunk === null || op.chunk.index === 0, last: op.chunk === null || op.chunk.last, expireMs: op.expireMs };
    if (this.opts.conflict !== 'skip-existing') return typedCommands(op.key, value, part, { version: this.version }, limits);
    // "Skip existing" keeps a key the destination holds, as RESTORE without REPLACE does. Typed
    // commands would add to it (or fail on its type), and a key in parts cannot be decided by
    // its first part without waiting for the reply before sending the next. So every part goes
    // to a staging key, and the complete key takes the name only if nothing holds it: RENAMENX
    // leaves both keys as they are when the name exists (renameGenericCommand in db.c), keeps
    // the TTL and field TTLs, and is one decision per key, made atomically, whatever its size.
    const staging = stagingKey(op.key);
    const commands = typedCommands(staging, value, part, { version: this.version }, limits);
    if (part.last) commands.push(['RENAMENX', staging, op.key], ['DEL', staging]);
    return commands;
  }

  /**
   * Under "skip existing", a RESTORE refused with BUSYKEY is a key kept, not a failure; the
   * last part of a stream written with typed commands counts the claims that claimed nothing.
   */
  private keyReplies(c: NodeConnection, op: KeyOp): ReplyHandler {
    if (this.restorable(op)) return this.opts.conflict === 'skip-existing' ? (r) => this.onSkippable(r, c, op) : null;
    return op.type === 'stream' && (op.chunk === null || op.chunk.last) ? (r) => this.onStreamReply(r, c, op) : null;
  }

  /** The reply handler of one of a key's commands: keyReplies', but the RENAMENX of a staged key's has its own. */
  private replyTo(cmd: CommandArg[], onReply: ReplyHandler, c: NodeConnection, op: KeyOp): ReplyHandler {
    return cmd[0] === 'RENAMENX' ? (r) => this.onStagedRename(r, c, op) : onReply;
  }

  /**
   * 0: the destination holds the key, which is kept (the staging key goes with the DEL after).
   * "no such key": the key's TTL passed while it arrived, and its PEXPIREAT removed the
   * staging key, as the source drops an expired key.
   */
  private onStagedRename(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply === 0) this.stats.skippedExisting++;
    else if (reply instanceof RespError && !/no such key/i.test(reply.message)) c.reportError(reply, op);
  }

  private onStreamReply(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply instanceof RespError) c.reportError(reply, op);
    // of the replies to a stream's commands only XCLAIM's is an array: empty, it claimed a deleted entry
    else if (Array.isArray(reply) && reply.length === 0) this.stats.lostPendingEntries++;
  }

  private onSkippable(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply instanceof RespError) {
      if (reply.code === 'BUSYKEY') this.stats.skippedExisting++;
      else c.reportError(reply, op);
    }
  }

  /** Waits for every reply; returns the redirected commands (to be sent again). */
  private async collect(conns: NodeConnection[]): Promise<ReplyFailure[]> {
    const results = await Promise.allSettled(conns.map((c) => c.replied()));
    const broken = results.find((r) => r.status === 'rejected');
    if (broken) throw connectionError(broken.reason);
    return this.triage(conns.flatMap((c) => c.takeFailures()));
  }

  /** The redirected commands (to be sent again); throws for any other refusal. */
  private triage(failures: ReplyFailure[]): ReplyFailure[] {
    const redirects: ReplyFailure[] = [];
    for (const f of failures) {
      if (REDIRECTS.has(f.error.code)) redirects.push(f);
      else if (f.error.code !== 'EXECABORT') throw SinkError.fromReply(f.error, f.tag, f.node); // EXECABORT: reported through the queued command's own error
    }
    return redirects;
  }

  /**
   * A command whose keys span slots, emulated on the destination (lib/cluster/colocate.ts).
   * Each of its writes records itself in its slot's checkpoint, in the same MULTI, so a run
   * cut short by a crash completes exactly the writes that are missing.
   */
  private async applyCrossSlot(op: CommandOp, ctx: BatchContext): Promise<void> {
    const call = async (slot: number, args: Arg[]): Promise<unknown> => {
      const r = await this.callAt(slot, args);
      if (r instanceof RespError) throw SinkError.fromReply(r, op);
      return r;
    };
    const exec: ClusterExecutor = {
      call,
      multi: async (slot, written) => {
        // the command itself, run there on co-located copies, in the form the destination has
        const commands = written.flatMap(([name, ...args]) => this.rewritten({ ...op, name: String(name).toUpperCase(), args: args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a)))) }, this.limits) ?? [[name, ...args]]);
        for (let attempt = 1; ; attempt++) {
          const c = this.nodeFor(slot);
          const replies = await Promise.all([c.call(['MULTI']), ...commands.map((cmd) => c.call(cmd)), c.call(['EXEC'])]);
          const bad = replies.find((r) => r instanceof RespError) as RespError | undefined;
          // a redirected command aborts the transaction (EXECABORT), a redirected EXEC discards it: nothing ran
          if (bad && this.redirected(bad, attempt)) {
            await this.followRedirect(attempt);
            continue;
          }
          if (bad) throw SinkError.fromReply(bad, op, c.name);
          const results = replies[replies.length - 1] as unknown[];
          const failed = results.find((r) => r instanceof RespError) as RespError | undefined;
          if (failed) throw SinkError.fromReply(failed, op, c.name);
          return results;
        }
      },
    };
    const log: StepLog | undefined = this.opts.exactlyOnce
      ? {
          record: (slot) => [this.checkpoints.writeCommand(ctx.source, op.shard, slot, op.offset) as Arg[]],
          recorded: (slot) => this.checkpoints.recordedAt(ctx.source, op.shard, slot, op.offset),
        }
      : undefined;
    try {
      await applyCrossSlot(op, exec, log);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError('CROSSSLOT', (err as Error).message);
    }
    this.stats.commands++;
  }

  // ---- barriers: keyless, cross-slot and snapshot markers ----

  private async applyBarrier(op: Operation, slot: number, ctx: BatchContext): Promise<void> {
    if (op.kind === 'snapshot-begin') {
      if ((ctx.partition ?? 0) > 0) {
        this.checkpoints.forget(ctx.source, op.shard);
        return;
      }
      await this.checkpoints.beginEpoch(ctx.source, op.shard, op.replid, op.offset, this.opts.conflict === 'intercept');
      return;
    }
    if (op.kind !== 'command') return;
    await this.checkpoints.prepare(ctx.source, op.shard);
    if (this.checkpoints.applied(ctx.source, op.shard, SLOT_NONE, op.offset)) {
      this.stats.skippedReplays++;
      return;
    }
    if (op.name === FUNCTION && !this.knownCommands.has(FUNCTION)) {
      this.stats.droppedFunctions++;
      this.opts.onDroppedFunction?.(describeFunctionCommand(op.args));
      // recorded as an applied barrier is (see writeBarrier), so a replay of it is skipped, not counted again
      if (this.opts.exactlyOnce) await this.checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    if (slot === SLOT_CROSS) {
      await this.applyCrossSlot(op, ctx);
      if (this.opts.exactlyOnce) await this.checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    if (op.name === 'SWAPDB') {
      await this.swapDbs(op, ctx);
      return;
    }
    // FLUSHALL, FLUSHDB and SCRIPT FLUSH without 6.2's mode, a SPUBLISH dropped (see destinationForm)
    const [form = null] = this.rewritten(op, this.limits) ?? [[op.name, ...op.args]];
    if (form === null) {
      if (this.opts.exactlyOnce) await this.checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    const targets = !this.cluster ? this.masters : TO_EVERY_MASTER.has(op.name) ? this.masters : [this.masters[0]];
    const flush = op.name === 'FLUSHALL' || op.name === 'FLUSHDB';
    // A flush of the db of the checkpoints (db 0; on a cluster every flush) takes them with it,
    // also what says which full sync the offsets belong to: that record is written again in
    // the flush's MULTI, with the flush's barrier, or a restart would find no record, take
    // nothing for applied, and apply again what came after the flush.
    const record = flush && (this.cluster || op.name === 'FLUSHALL' || op.db === 0) ? await this.checkpoints.record() : null;
    const holder = this.nodeFor(0);
    for (const c of targets) {
      const args: CommandArg[] = this.cluster && op.name === 'FLUSHDB' ? ['FLUSHALL', ...form.slice(1)] : form;
      if (!(this.cluster && op.name === 'FLUSHDB')) this.selectDb(c, op.db, op);
      if (record === null || c !== holder) {
        c.send(args, null, op);
        continue;
      }
      c.send(['MULTI'], null, op);
      c.send(args, null, op);
      this.selectDb(c, 0, op);
      for (const cmd of this.checkpoints.rewriteCommands(record, this.opts.exactlyOnce ? { source: ctx.source, shard: op.shard, offset: op.offset } : null)) c.send(cmd, null, op);
      c.send(['EXEC'], (reply) => execFailures(reply, c, op), op);
    }
    this.stats.commands++;
    if ((await this.collect(targets)).length > 0) throw new SinkError('MOVED', `${op.name} at offset ${op.offset} was redirected`);
    if (flush) this.checkpoints.forgetSlots();
    for (const c of targets) this.selectDb(c, 0, op);
    if (!this.opts.exactlyOnce) return;
    if (record !== null) this.checkpoints.noteBarrier(ctx.source, op.shard, op.offset);
    else await this.checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
  }

  /**
   * SWAPDB on a server (dbs.ts keeps it from a cluster, and from a server that lacks one of
   * its dbs). The sink's checkpoints live in db 0, and a swap with db 0 takes them into the
   * other db, where a restarted sink would not find them: in the same MULTI they go back to
   * db 0, after whatever checkpoint keys that db held (an earlier run's) are deleted, so MOVE
   * finds db 0 free of them (moveCommand in db.c moves nothing onto an existing key). The
   * swap's barrier is recorded in that MULTI too, with exactly once or without: a SWAPDB
   * applied twice is undone.
   */
  private async swapDbs(op: CommandOp, ctx: BatchContext): Promise<void> {
    const c = this.masters[0];
    const [a, b] = op.args.map((x) => Number(x.toString('latin1')));
    const other = a === 0 ? b : b === 0 ? a : 0;
    const own = this.checkpoints.standaloneKeys();
    c.send(['MULTI'], null, op);
    if (other !== 0) {
      this.selectDb(c, other, op);
      c.send(['DEL', ...own], null, op);
    }
    c.send(['SWAPDB', ...op.args], null, op);
    for (const k of other !== 0 ? own : []) c.send(['MOVE', k, 0], null, op);
    this.selectDb(c, 0, op);
    for (const cmd of this.checkpoints.rewriteCommands(null, { source: ctx.source, shard: op.shard, offset: op.offset })) c.send(cmd, null, op);
    c.send(['EXEC'], (reply) => execFailures(reply, c, op), op);
    this.stats.commands++;
    await this.collect([c]);
    this.checkpoints.noteBarrier(ctx.source, op.shard, op.offset);
  }
}

/** The parts of `ASK <slot> <host>:<port>` (an IPv6 host holds colons of its own). */
function askTarget(ask: RespError): { slot: number; host: string; port: number } {
  const [, slot, address = ''] = ask.message.split(' ');
  const colon = address.lastIndexOf(':');
  return { slot: Number(slot), host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** The errors of a MULTI … EXEC the sink made itself: EXEC's own, or those in its array of replies. */
function execFailures(reply: RespValue, c: NodeConnection, op: Operation): void {
  if (reply instanceof RespError) c.reportError(reply, op);
  else if (Array.isArray(reply)) for (const r of reply) if (r instanceof RespError) c.reportError(r, op);
}

function connectionError(reason: unknown): SinkError {
  return new SinkError('CONNECTION', reason instanceof Error ? reason.message : String(reason));
}

/** Between two tries to reach the destination: 100 ms, doubling up to 2 s. */
function reconnectPause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (attempt - 1), 2000)));
}
