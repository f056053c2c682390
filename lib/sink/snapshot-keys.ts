import type { KeyOp } from '../ops/operation';
import { decodeRawValue, type KeyValue } from '../rdb';
import type { CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import type { NodeConnection, ReplyHandler } from './connection';
import { dumpPayloadFor, restorableBy, restoreCommands } from './restore';
import { stagingKey, typedCommands, type TypedLimits } from './typed';

/** What the encoding depends on: the destination's server (see Destination), the sink's settings. */
export interface SnapshotKeyTarget {
  readonly version: [number, number];
  readonly rdbVersion: number;
}

/** What the replies of snapshot keys count into the writer's stats. */
export interface SnapshotKeyCounts {
  skippedExisting: number;
  lostPendingEntries: number;
}

/**
 * A snapshot key (or one part of a big one) as the commands the destination runs, and what
 * their replies mean: one RESTORE where the destination takes the payload (restore.ts),
 * typed commands otherwise (typed.ts), under "skip existing" built under a staging name.
 */
export class SnapshotKeys {
  constructor(
    private readonly target: SnapshotKeyTarget,
    private readonly skipExisting: boolean,
    private readonly restoreMaxBytes: number,
    private readonly counts: SnapshotKeyCounts,
  ) {}

  /** Whether the key goes as one RESTORE: the destination reads its payload, and it is not too big for one command. */
  restorable(op: KeyOp): boolean {
    return op.raw !== null && restorableBy(op, this.target.rdbVersion) && op.raw.length <= this.restoreMaxBytes;
  }

  /** A snapshot key as commands: one RESTORE where the destination takes the payload, typed commands otherwise. */
  commands(op: KeyOp, limits: TypedLimits): CommandArg[][] {
    const version = this.target.version;
    if (this.restorable(op)) {
      const payload = dumpPayloadFor({ rdbType: op.rdbType, raw: op.raw as Buffer, rdbVersion: op.rdbVersion }, this.target.rdbVersion);
      return restoreCommands(op, payload, !this.skipExisting, version, Date.now()) ?? [];
    }
    const value = (op.value === null ? decodeRawValue(op.rdbType, op.raw as Buffer, op.rdbVersion) : op) as KeyValue;
    const part = { first: op.chunk === null || op.chunk.index === 0, last: op.chunk === null || op.chunk.last, expireMs: op.expireMs };
    if (!this.skipExisting) return typedCommands(op.key, value, part, { version }, limits);
    // "Skip existing" keeps a key the destination holds, as RESTORE without REPLACE does. Typed
    // commands would add to it (or fail on its type), and a key in parts cannot be decided by
    // its first part without waiting for the reply before sending the next. So every part goes
    // to a staging key, and the complete key takes the name only if nothing holds it: RENAMENX
    // leaves both keys as they are when the name exists (renameGenericCommand in db.c), keeps
    // the TTL and field TTLs, and is one decision per key, made atomically, whatever its size.
    const staging = stagingKey(op.key);
    const commands = typedCommands(staging, value, part, { version }, limits);
    if (part.last) commands.push(['RENAMENX', staging, op.key], ['DEL', staging]);
    return commands;
  }

  /**
   * Under "skip existing", a RESTORE refused with BUSYKEY is a key kept, not a failure; the
   * last part of a stream written with typed commands counts the claims that claimed nothing.
   */
  replies(c: NodeConnection, op: KeyOp): ReplyHandler {
    if (this.restorable(op)) return this.skipExisting ? (r) => this.onSkippable(r, c, op) : null;
    return op.type === 'stream' && (op.chunk === null || op.chunk.last) ? (r) => this.onStreamReply(r, c, op) : null;
  }

  /** The reply handler of one of a key's commands: `replies`', but the RENAMENX of a staged key's has its own. */
  replyTo(cmd: CommandArg[], onReply: ReplyHandler, c: NodeConnection, op: KeyOp): ReplyHandler {
    return cmd[0] === 'RENAMENX' ? (r) => this.onStagedRename(r, c, op) : onReply;
  }

  /**
   * 0: the destination holds the key, which is kept (the staging key goes with the DEL after).
   * "no such key": the key's TTL passed while it arrived, and its PEXPIREAT removed the
   * staging key, as the source drops an expired key.
   */
  private onStagedRename(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply === 0) this.counts.skippedExisting++;
    else if (reply instanceof RespError && !/no such key/i.test(reply.message)) c.reportError(reply, op);
  }

  private onStreamReply(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply instanceof RespError) c.reportError(reply, op);
    // of the replies to a stream's commands only XCLAIM's is an array: empty, it claimed a deleted entry
    else if (Array.isArray(reply) && reply.length === 0) this.counts.lostPendingEntries++;
  }

  private onSkippable(reply: RespValue, c: NodeConnection, op: KeyOp): void {
    if (reply instanceof RespError) {
      if (reply.code === 'BUSYKEY') this.counts.skippedExisting++;
      else c.reportError(reply, op);
    }
  }
}
