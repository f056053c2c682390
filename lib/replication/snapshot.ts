import type { CommandOp, KeyOp, Operation } from '../ops/operation';
import { RdbParser } from '../rdb/parser';

export interface SnapshotDecoderOptions {
  /** Names the source shard in every operation. */
  shard: string;
  /** The replication id and offset the snapshot stands at (a +FULLRESYNC's, or one made for a backup file). */
  replid: string;
  offset: number;
  /** Keys larger than this come in chunks (see RdbParser). */
  bigKeyBytes?: number;
  /** Decode snapshot values (see RdbParser's decodeValues); raw bytes are always there. */
  decodeValues?: boolean;
}

/**
 * Turns the bytes of one RDB into the operations of a snapshot: snapshot-begin, a key (or
 * the chunks of a big key) per key, the commands the RDB implies (function libraries, the
 * scripts of Redis 4 and 5), snapshot-end. One home for what a full sync (ReplicationDecoder)
 * and a backup file (lib/backup/rdb-file.ts) emit, so everything downstream sees the same.
 */
export class SnapshotDecoder {
  /** Keys emitted (a chunked key counts once, at its last chunk) and RDB bytes pushed. */
  keys = 0;
  bytes = 0;

  private readonly opts: SnapshotDecoderOptions;
  private readonly rdb: RdbParser;

  constructor(opts: SnapshotDecoderOptions) {
    this.opts = opts;
    this.rdb = new RdbParser({ bigKeyBytes: opts.bigKeyBytes, decodeValues: opts.decodeValues });
  }

  begin(): Operation {
    return { kind: 'snapshot-begin', shard: this.opts.shard, replid: this.opts.replid, offset: this.opts.offset };
  }

  /** Operations of the RDB bytes `data` (and of those before it that did not complete an event). Throws RdbError. */
  push(data: Buffer): Operation[] {
    this.bytes += data.length;
    return this.operations(this.rdb.push(data));
  }

  /** The RDB ended: the rest, then snapshot-end. Throws RdbError where it ended early or its checksum is wrong. */
  finish(): Operation[] {
    const ops = this.operations(this.rdb.finish());
    const { shard, replid, offset } = this.opts;
    ops.push({ kind: 'snapshot-end', shard, replid, offset, keys: this.keys, emptyKeysSkipped: this.rdb.emptyKeysSkipped });
    return ops;
  }

  private operations(events: ReturnType<RdbParser['push']>): Operation[] {
    const ops: Operation[] = [];
    for (const ev of events) {
      switch (ev.kind) {
        case 'key': {
          const op = ev as KeyOp;
          op.shard = this.opts.shard;
          op.offset = this.opts.offset;
          op.rdbVersion = this.rdb.version;
          if (ev.chunk === null || ev.chunk.last) this.keys++;
          ops.push(op);
          break;
        }
        case 'function':
          ops.push(this.made('FUNCTION', [Buffer.from('LOAD'), Buffer.from('REPLACE'), ev.code]));
          break;
        case 'aux':
          // Redis 4 and 5 keep the scripts of the script cache here; EVALSHA needs them.
          if (ev.name.toString('latin1') === 'lua') ops.push(this.made('SCRIPT', [Buffer.from('LOAD'), ev.value]));
          break;
        default:
          break;
      }
    }
    return ops;
  }

  /** A command that the snapshot implies, applied at the snapshot's position. */
  private made(name: string, args: Buffer[]): CommandOp {
    return { kind: 'command', db: 0, name, args, keys: [], shard: this.opts.shard, offset: this.opts.offset, tx: 0 };
  }
}
