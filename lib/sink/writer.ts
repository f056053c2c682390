import { SlotRouter } from '../cluster/router';
import { slotOf, slotsOfShard } from '../cluster/slots';
import type { EndpointConfig } from '../endpoint';
import { isReplaySafe, TX_MARKERS } from '../ops/commands';
import { SLOT_CROSS, SLOT_NONE, type CommandOp, type KeyOp, type Operation } from '../ops/operation';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import { Barriers } from './barriers';
import { Checkpoints } from './checkpoints';
import type { NodeConnection, ReplyFailure } from './connection';
import { DestinationDbs, type Dropped } from './dbs';
import { askTarget, Destination, REDIRECT_TRIES, triage } from './destination';
import { SinkError } from './errors';
import { EvictionWatch } from './eviction';
import { SnapshotKeys } from './snapshot-keys';
import { TypedLimits } from './typed';

/**
 * Alibaba Cloud DTS's conflict modes: "precheck and intercept" (the destination must be
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
 * pipelined per node. It routes a batch once as it comes in (`enter`), then keeps the order
 * of batches, the batches in flight and the exactly-once grouping (commands.ts,
 * checkpoints.ts); the connections and redirections are the Destination's, the barriers
 * Barriers', the snapshot keys' commands SnapshotKeys'.
 */
export class DestinationWriter {
  readonly stats: WriterStats = { keys: 0, commands: 0, skippedReplays: 0, skippedExisting: 0, typedKeys: 0, droppedFieldTtls: 0, droppedFunctions: 0, lostPendingEntries: 0, redirects: 0, asks: 0, evictedKeys: 0, expiredKeys: 0, dropped: {} };
  private readonly opts: Required<Pick<WriterOptions, 'conflict' | 'exactlyOnce'>> & Pick<WriterOptions, 'onDroppedFunction' | 'onDropped'>;
  private readonly dest: Destination;
  private readonly eviction: EvictionWatch;
  private readonly limits = new TypedLimits();
  private readonly keys: SnapshotKeys;
  /** The dbs the destination has (see dbs.ts). */
  private dbs = new DestinationDbs(Infinity, false);
  private checkpoints!: Checkpoints;
  private barriers!: Barriers;
  /** Gives slots to a batch no slot router gave them, with the router's own splitting. */
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

  constructor(opts: WriterOptions) {
    this.opts = {
      conflict: opts.conflict ?? 'ignore',
      exactlyOnce: opts.exactlyOnce ?? true,
      onDroppedFunction: opts.onDroppedFunction,
      onDropped: opts.onDropped,
    };
    this.dest = new Destination({ endpoint: opts.endpoint, onReconnect: opts.onReconnect }, this.stats);
    this.keys = new SnapshotKeys(this.dest, this.opts.conflict === 'skip-existing', opts.restoreMaxBytes ?? 64 * 1024 * 1024, this.stats);
    this.eviction = new EvictionWatch({ allow: opts.allowEviction === true, onEvicted: opts.onEvicted, onUnchecked: opts.onEvictionUnchecked }, this.stats);
  }

  /**
   * Connects (see Destination.connect), and refuses an evicting destination (eviction.ts),
   * which no retry cures.
   */
  async connect(): Promise<void> {
    const dest = this.dest;
    await dest.connect(() => this.eviction.admit(dest.masters));
    this.dbs = new DestinationDbs(dest.databases, dest.cluster);
    this.checkpoints = new Checkpoints(dest.cluster, (slot) => dest.nodeFor(slot), dest.masters, (slot, args) => dest.callAt(slot, args));
    dest.onMasters = (masters) => this.checkpoints.setMasters(masters);
    this.barriers = new Barriers(dest, this.checkpoints, { exactlyOnce: this.opts.exactlyOnce, intercept: this.opts.conflict === 'intercept', onDroppedFunction: this.opts.onDroppedFunction }, this.stats, this.limits);
    // masters that appear later (a failover, a resharding) are checked when the watch first sees them
    this.eviction.start(() => dest.masters, (err) => (this.failure ??= err));
  }

  close(): void {
    this.eviction.stop();
    this.dest.close();
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
    ops = await this.enter(ops, ctx);
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.dest.lostConnection()) {
        // lost while no batch was there to notice: connect again once everything before is settled
        await this.settled();
        if (this.dest.lostConnection()) await this.reconnect(new Error('a connection to the destination closed'));
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

  /**
   * Where a batch is routed, once: fitted to the destination's dbs; for a cluster
   * destination given its slots when no slot router gave them (with the router's own code,
   * which also splits what spans slots), or else each routed key's slot checked; and a key
   * written outside its source shard's slots noted (see noteMovedKeys). Each operation's
   * first key is hashed here once at most; after this the writer reads `slot` (see slotIn).
   */
  private async enter(ops: Operation[], ctx: BatchContext): Promise<Operation[]> {
    ops = this.withinDbs(ops);
    const cluster = this.dest.cluster;
    const routedHere = cluster && ops.some((o) => (o.kind === 'command' || o.kind === 'key') && o.slot === undefined);
    if (routedHere) ops = this.router.route(ops);
    const checked = cluster && !routedHere;
    let shard: string | null = null;
    let owned: Uint8Array | null = null;
    for (const op of ops) {
      if (op.kind !== 'key' && op.kind !== 'command') continue;
      if (op.shard !== shard) {
        shard = op.shard;
        owned = this.checkpoints.movedKeys(ctx.source, shard) ? null : slotsOfShard(shard);
      }
      const routed = cluster && (op.slot as number) >= 0 ? (op.slot as number) : SLOT_NONE;
      if (owned === null && !(checked && routed >= 0)) continue;
      const key = op.kind === 'key' ? op.key : op.keys.length > 0 ? op.args[op.keys[0]] : undefined;
      if (key === undefined) continue;
      const slot = routedHere && routed >= 0 ? routed : slotOf(key);
      if (checked && routed >= 0 && slot !== routed) throw wrongSlot(key, op, slot, routed);
      if (owned !== null && owned[slot] === 0) {
        await this.checkpoints.noteMovedKeys(ctx.source, op.shard);
        owned = null;
      }
    }
    return ops;
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

  /** Connects again (see Destination.reconnect) and forgets the checkpoints read: only the destination knows whether a transaction in flight was applied. */
  private async reconnect(cause: unknown): Promise<void> {
    await this.dest.reconnect(cause);
    this.checkpoints.forgetAll();
  }

  /**
   * The slot an operation is applied in, as `enter` left it: a cluster's hash slot (or
   * SLOT_NONE, SLOT_CROSS); on a standalone destination 0 for every keyed operation.
   */
  private slotIn(op: Operation): number {
    if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end') return SLOT_NONE;
    if (!this.dest.cluster) return op.kind === 'command' && op.keys.length === 0 ? SLOT_NONE : 0;
    return op.slot as number;
  }

  /** Whether a batch may be written while earlier ones wait for their replies (see `apply`). */
  private overlappable(ops: Operation[], ctx: BatchContext): boolean {
    if (ops.length === 0 || !this.checkpoints.prepared(ctx.source, ops[0].shard)) return false;
    const shard = ops[0].shard;
    for (const op of ops) {
      if (op.kind !== 'key' && op.kind !== 'command') return false;
      if (op.shard !== shard) return false;
      const slot = this.slotIn(op);
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
    if (!lost && triage(conns.flatMap((c) => c.takeFailures(batch.marks.get(c)))).length === 0) {
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
      const all = this.dest.connections();
      const drained = await Promise.allSettled(all.map((c) => c.replied()));
      lost ??= drained.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const c of all) c.takeFailures();
      if (lost) await this.reconnect(lost.reason);
      else await this.dest.reloadAfterRedirect();
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
        if (!this.dest.lostConnection()) throw err;
        await this.reconnect(err);
      }
    }
  }

  private async applyAloneOnce(ops: Operation[], ctx: BatchContext): Promise<void> {
    let segment: Operation[] = [];
    for (const op of ops) {
      if (op.kind === 'command' && TX_MARKERS.has(op.name)) continue;
      const slot = this.slotIn(op);
      if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end' || slot === SLOT_NONE || slot === SLOT_CROSS) {
        // a barrier: everything before it is applied first, everything after waits for it
        await this.applySegment(segment, ctx);
        segment = [];
        await this.barriers.apply(op, slot, ctx);
      } else {
        segment.push(op);
      }
    }
    await this.applySegment(segment, ctx);
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
        redirects = await this.dest.collect([...touched]);
        if (redirects.length > 0 && redirects.every((f) => f.error.code === 'ASK')) redirects = await this.followAsks(groups, redirects, ctx);
      } catch (err) {
        if (!this.dest.lostConnection()) throw err;
        await this.reconnect(err);
        continue;
      }
      if (redirects.length === 0) return;
      if (attempt >= REDIRECT_TRIES) throw SinkError.redirected(attempt, redirects[0].error, redirects[0].tag);
      // re-apply what did not land: already applied guarded groups are skipped by their checkpoint,
      // unguarded ones are assignments and may run twice
      await this.dest.followRedirect(attempt);
    }
  }

  private group(ops: Operation[], ctx: BatchContext): Group[] {
    const bySlot = new Map<number, Group>();
    const partition = ctx.partition ?? 0;
    const cluster = this.dest.cluster;
    let shard: string | null = null;
    let applied = this.checkpoints.appliedIn(ctx.source, '');
    for (const op of ops) {
      const slot = this.slotIn(op);
      const lane = cluster ? slot : partition;
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
      let g = bySlot.get(slot);
      if (!g) {
        g = { slot, lane, conn: this.dest.nodeFor(slot), ops: [], guarded: false };
        bySlot.set(slot, g);
      }
      g.ops.push(op);
      if (op.kind === 'command' && !g.guarded && this.guards(op)) g.guarded = true;
    }
    return [...bySlot.values()];
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
      this.dest.selectDb(c, 0, g);
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
      if (!targets.has(slot)) targets.set(slot, await this.dest.askedNode(f.error));
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
          for (const cmd of (this.dest.rewritten(op, new TypedLimits()) ?? [[op.name, ...op.args]]).slice(-n)) {
            to.send(['ASKING'], null, op);
            to.send(cmd, null, op);
          }
        } else if (op.kind === 'key') {
          for (const cmd of this.keys.commands(op, new TypedLimits()).slice(-n)) {
            to.send(['ASKING'], null, op);
            to.send(cmd, this.keys.replyTo(cmd, this.keys.replies(to, op), to, op), op);
          }
        }
      }
    }
    return this.dest.collect([...touched]);
  }

  private onExec(reply: RespValue, g: Group, done: { source: string; shard: string; offset: number }): void {
    // EXECABORT (a queued command was refused, e.g. MOVED): the error of that command is in `errors`.
    if (reply instanceof RespError && reply.code !== 'EXECABORT') g.conn.reportError(reply, g);
    if (!Array.isArray(reply)) return;
    // the group is applied, checkpoint included: a retry of this batch must skip it
    this.checkpoints.noteApplied(done.source, done.shard, g.lane, done.offset);
    for (const r of reply) if (r instanceof RespError) g.conn.reportError(r, g);
  }

  private sendCommand(c: NodeConnection, op: CommandOp, g: Group): void {
    this.dest.selectDb(c, op.db, g);
    const commands = this.dest.rewritten(op, this.limits);
    if (commands === null) c.sendNamed(op.name, op.args, op);
    else {
      for (const cmd of commands) c.send(cmd, null, op);
      this.stats.droppedFieldTtls = this.limits.droppedFieldTtls;
    }
    this.stats.commands++;
  }

  private sendKey(c: NodeConnection, op: KeyOp, g: Group): void {
    this.dest.selectDb(c, op.db, g);
    if (op.chunk === null || op.chunk.index === 0) this.stats.keys++;
    if (!this.keys.restorable(op)) this.stats.typedKeys++;
    const onReply = this.keys.replies(c, op);
    for (const cmd of this.keys.commands(op, this.limits)) c.send(cmd, this.keys.replyTo(cmd, onReply, c, op), op);
    this.stats.droppedFieldTtls = this.limits.droppedFieldTtls;
  }
}

/**
 * A slot the router set must still be the slot of the keys: a function node that renames
 * keys after the router would otherwise send them to a node that refuses them (CROSSSLOT,
 * MOVED), or, behind several partitions, let two sinks write one slot's checkpoint.
 */
function wrongSlot(key: Buffer, op: KeyOp | CommandOp, slot: number, routed: number): SinkError {
  return new SinkError(
    'SLOT',
    `key "${key.toString('latin1').slice(0, 80)}" (source offset ${op.offset}) hashes to slot ${slot}, but the slot router put it in slot ${routed}: keys were changed after the router; change them before it (see the README on function nodes)`,
  );
}
