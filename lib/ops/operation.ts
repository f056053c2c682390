import type { RdbKey } from '../rdb/events';

/**
 * The operation model: what flows between the nodes, in batches (msg.payload is an array
 * of operations). Keys and values are Buffers, so any bytes survive. A function node may
 * change operations in place; `keys` tells which `args` of a command are key names.
 */
export type Operation = CommandOp | KeyOp | SnapshotBeginOp | SnapshotEndOp;

/** `slot` of a command with no key (FLUSHALL, SCRIPT LOAD, PUBLISH …): it goes to every node or any node. */
export const SLOT_NONE = -1;
/** `slot` of a command whose keys span slots and cannot be split: the sink co-locates its keys. */
export const SLOT_CROSS = -2;

/** A write command from the replication stream (or made from the snapshot, e.g. FUNCTION LOAD). */
export interface CommandOp {
  kind: 'command';
  db: number;
  /** Upper-case command name, e.g. "SET". */
  name: string;
  /** The arguments after the command name. */
  args: Buffer[];
  /** Indexes into `args` of the key names. */
  keys: number[];
  /** The source shard that replicated it. */
  shard: string;
  /** Replication offset of the source right after this command. */
  offset: number;
  /** Non-zero inside MULTI … EXEC: the commands of one transaction share it (MULTI and EXEC too). */
  tx: number;
  /** Set by the slot router: the destination hash slot of `keys`, or SLOT_NONE / SLOT_CROSS. */
  slot?: number;
}

/** One key of the snapshot (or one chunk of a big key): the parsed RDB key plus its provenance. */
export type KeyOp = RdbKey & {
  shard: string;
  /** The replication offset the snapshot stands at (from +FULLRESYNC). */
  offset: number;
  /** RDB version of `raw`: a DUMP payload of it is accepted by servers of at least this RDB version. */
  rdbVersion: number;
  /** Set by the slot router: the destination hash slot of `key`. */
  slot?: number;
};

/** A full sync of one shard starts: what the destination held for it must be replaced. */
export interface SnapshotBeginOp {
  kind: 'snapshot-begin';
  shard: string;
  replid: string;
  offset: number;
}

/** The snapshot of one shard is complete; stream commands follow from `offset`. */
export interface SnapshotEndOp {
  kind: 'snapshot-end';
  shard: string;
  replid: string;
  offset: number;
  keys: number;
  /** Keys of the snapshot left out because they hold no element, as Redis leaves them out (RdbParser.emptyKeysSkipped). */
  emptyKeysSkipped: number;
}

/** Per Buffer or array in memory beyond its bytes: what makes many small elements cost more than their size. */
const OVERHEAD = 64;

/** What an operation holds in memory, roughly: batches are cut by it, so memory stays bounded. */
export function operationBytes(op: Operation): number {
  if (op.kind === 'command') {
    let n = OVERHEAD;
    for (const a of op.args) n += a.length + OVERHEAD;
    return n;
  }
  if (op.kind !== 'key') return OVERHEAD;
  return OVERHEAD + op.key.length + (op.raw !== null ? op.raw.length : valueBytes(op.value));
}

function valueBytes(v: unknown): number {
  if (Buffer.isBuffer(v)) return v.length + OVERHEAD;
  if (Array.isArray(v)) {
    let n = OVERHEAD;
    for (const x of v) n += valueBytes(x);
    return n;
  }
  if (typeof v === 'object' && v !== null && 'entries' in v) return valueBytes((v as { entries: Array<{ fields: Buffer[] }> }).entries.map((e) => e.fields));
  return OVERHEAD;
}
