import { applyCrossSlot, type Arg, type ClusterExecutor, type StepLog } from '../cluster/colocate';
import { TO_EVERY_MASTER } from '../ops/commands';
import { SLOT_CROSS, SLOT_NONE, type CommandOp, type Operation } from '../ops/operation';
import type { CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import type { Checkpoints } from './checkpoints';
import type { NodeConnection } from './connection';
import type { Destination } from './destination';
import { SinkError } from './errors';
import { describeFunctionCommand, FUNCTION } from './functions';
import type { TypedLimits } from './typed';

/** Where a batch comes from (see the writer's BatchContext). */
export interface BarrierContext {
  source: string;
  partition?: number;
}

export interface BarrierOptions {
  exactlyOnce: boolean;
  /** "Precheck and intercept": a full sync's start checks that the destination is empty. */
  intercept: boolean;
  onDroppedFunction?: (what: string) => void;
}

/** What barriers count into the writer's stats. */
export interface BarrierCounts {
  commands: number;
  skippedReplays: number;
  droppedFunctions: number;
}

/**
 * The operations applied alone, with everything before them applied and everything after
 * waiting: a full sync's start, keyless commands (FLUSHALL, SWAPDB, FUNCTION …, on the
 * masters they concern) and commands whose keys span slots (run on co-located copies, see
 * lib/cluster/colocate.ts). Each records its barrier in the checkpoints (checkpoints.ts).
 */
export class Barriers {
  constructor(
    private readonly dest: Destination,
    private readonly checkpoints: Checkpoints,
    private readonly opts: BarrierOptions,
    private readonly counts: BarrierCounts,
    private readonly limits: TypedLimits,
  ) {}

  /** Applies a barrier; `slot` is the writer's (SLOT_CROSS for a command whose keys span slots). */
  async apply(op: Operation, slot: number, ctx: BarrierContext): Promise<void> {
    const { checkpoints, dest, opts } = this;
    if (op.kind === 'snapshot-begin') {
      if ((ctx.partition ?? 0) > 0) {
        checkpoints.forget(ctx.source, op.shard);
        return;
      }
      await checkpoints.beginEpoch(ctx.source, op.shard, op.replid, op.offset, opts.intercept);
      return;
    }
    if (op.kind !== 'command') return;
    await checkpoints.prepare(ctx.source, op.shard);
    if (checkpoints.applied(ctx.source, op.shard, SLOT_NONE, op.offset)) {
      this.counts.skippedReplays++;
      return;
    }
    if (op.name === FUNCTION && !dest.knownCommands.has(FUNCTION)) {
      this.counts.droppedFunctions++;
      opts.onDroppedFunction?.(describeFunctionCommand(op.args));
      // recorded as an applied barrier is (see writeBarrier), so a replay of it is skipped, not counted again
      if (opts.exactlyOnce) await checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    if (slot === SLOT_CROSS) {
      await this.crossSlot(op, ctx);
      if (opts.exactlyOnce) await checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    if (op.name === 'SWAPDB') {
      await this.swapDbs(op, ctx);
      return;
    }
    // FLUSHALL, FLUSHDB and SCRIPT FLUSH without 6.2's mode, a SPUBLISH dropped (see destinationForm)
    const [form = null] = dest.rewritten(op, this.limits) ?? [[op.name, ...op.args]];
    if (form === null) {
      if (opts.exactlyOnce) await checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
      return;
    }
    const cluster = dest.cluster;
    const targets = !cluster || TO_EVERY_MASTER.has(op.name) ? dest.masters : [dest.masters[0]];
    const flush = op.name === 'FLUSHALL' || op.name === 'FLUSHDB';
    // A flush of the db of the checkpoints (db 0; on a cluster every flush) takes them with it,
    // also what says which full sync the offsets belong to: that record is written again in
    // the flush's MULTI, with the flush's barrier, or a restart would find no record, take
    // nothing for applied, and apply again what came after the flush.
    const record = flush && (cluster || op.name === 'FLUSHALL' || op.db === 0) ? await checkpoints.record() : null;
    const holder = dest.nodeFor(0);
    for (const c of targets) {
      // a cluster has db 0 only: its FLUSHDB is a FLUSHALL
      const args: CommandArg[] = cluster && op.name === 'FLUSHDB' ? ['FLUSHALL', ...form.slice(1)] : form;
      dest.selectDb(c, op.db, op);
      if (record === null || c !== holder) {
        c.send(args, null, op);
        continue;
      }
      c.send(['MULTI'], null, op);
      c.send(args, null, op);
      dest.selectDb(c, 0, op);
      for (const cmd of checkpoints.rewriteCommands(record, opts.exactlyOnce ? { source: ctx.source, shard: op.shard, offset: op.offset } : null)) c.send(cmd, null, op);
      c.send(['EXEC'], (reply) => execFailures(reply, c, op), op);
    }
    this.counts.commands++;
    if ((await dest.collect(targets)).length > 0) throw new SinkError('MOVED', `${op.name} at offset ${op.offset} was redirected`);
    if (flush) checkpoints.forgetSlots();
    for (const c of targets) dest.selectDb(c, 0, op);
    if (!opts.exactlyOnce) return;
    if (record !== null) checkpoints.noteBarrier(ctx.source, op.shard, op.offset);
    else await checkpoints.writeBarrier(ctx.source, op.shard, op.offset);
  }

  /**
   * A command whose keys span slots, emulated on the destination (lib/cluster/colocate.ts).
   * Each of its writes records itself in its slot's checkpoint, in the same MULTI, so a run
   * cut short by a crash completes exactly the writes that are missing.
   */
  private async crossSlot(op: CommandOp, ctx: BarrierContext): Promise<void> {
    const { dest, checkpoints } = this;
    const exec: ClusterExecutor = {
      call: async (slot, args) => {
        const r = await dest.callAt(slot, args);
        if (r instanceof RespError) throw SinkError.fromReply(r, op);
        return r;
      },
      multi: async (slot, written) => {
        // the command itself, run there on co-located copies, in the form the destination has
        const commands = written.flatMap(([name, ...args]) => dest.rewritten({ ...op, name: String(name).toUpperCase(), args: args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a)))) }, this.limits) ?? [[name, ...args]]);
        for (let attempt = 1; ; attempt++) {
          const c = dest.nodeFor(slot);
          const replies = await Promise.all([c.call(['MULTI']), ...commands.map((cmd) => c.call(cmd)), c.call(['EXEC'])]);
          const bad = replies.find((r) => r instanceof RespError) as RespError | undefined;
          // a redirected command aborts the transaction (EXECABORT), a redirected EXEC discards it: nothing ran
          if (bad && dest.redirected(bad, attempt)) {
            await dest.followRedirect(attempt);
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
          record: (slot) => [checkpoints.writeCommand(ctx.source, op.shard, slot, op.offset) as Arg[]],
          recorded: (slot) => checkpoints.recordedAt(ctx.source, op.shard, slot, op.offset),
        }
      : undefined;
    try {
      await applyCrossSlot(op, exec, log);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError('CROSSSLOT', (err as Error).message);
    }
    this.counts.commands++;
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
  private async swapDbs(op: CommandOp, ctx: BarrierContext): Promise<void> {
    const { dest, checkpoints } = this;
    const c = dest.masters[0];
    const [a, b] = op.args.map((x) => Number(x.toString('latin1')));
    const other = a === 0 ? b : b === 0 ? a : 0;
    const own = checkpoints.standaloneKeys();
    c.send(['MULTI'], null, op);
    if (other !== 0) {
      dest.selectDb(c, other, op);
      c.send(['DEL', ...own], null, op);
    }
    c.send(['SWAPDB', ...op.args], null, op);
    for (const k of other !== 0 ? own : []) c.send(['MOVE', k, 0], null, op);
    dest.selectDb(c, 0, op);
    for (const cmd of checkpoints.rewriteCommands(null, { source: ctx.source, shard: op.shard, offset: op.offset })) c.send(cmd, null, op);
    c.send(['EXEC'], (reply) => execFailures(reply, c, op), op);
    this.counts.commands++;
    await dest.collect([c]);
    checkpoints.noteBarrier(ctx.source, op.shard, op.offset);
  }
}

/** The errors of a MULTI … EXEC the sink made itself: EXEC's own, or those in its array of replies. */
function execFailures(reply: RespValue, c: NodeConnection, op: Operation): void {
  if (reply instanceof RespError) c.reportError(reply, op);
  else if (Array.isArray(reply)) for (const r of reply) if (r instanceof RespError) c.reportError(r, op);
}
