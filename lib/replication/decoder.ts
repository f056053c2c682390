import { commandOf } from '../ops/commands';
import type { Operation } from '../ops/operation';
import { RespParser } from '../resp/parser';
import { ReplicationError } from './errors';
import type { LinkRecord, ReplPosition } from './link';
import { SnapshotDecoder } from './snapshot';

export interface DecoderOptions {
  /** Names the source shard in every operation. */
  shard: string;
  /** Keys larger than this come in chunks (see RdbParser). */
  bigKeyBytes?: number;
  /** Decode snapshot values (see RdbParser's decodeValues); raw bytes are always there. */
  decodeValues?: boolean;
}

export type DecoderPhase = 'idle' | 'snapshot' | 'stream';

/** Commands a master sends to keep the link alive or to query the replica; not data. */
const LINK_ONLY = new Set(['PING', 'REPLCONF']);

/**
 * Turns what a replica link received (in spool order) into operations: snapshot keys from
 * the RDB, then the write commands of the stream, each with the replication offset right
 * after it. SELECT is folded into `db`, link chatter (PING, REPLCONF) dropped, and the
 * commands of a MULTI … EXEC share a transaction id.
 */
export class ReplicationDecoder {
  phase: DecoderPhase = 'idle';
  /** Replication id and offset just after the last operation returned (or the snapshot's). */
  position: ReplPosition | null = null;
  /** The offset of the last full sync's snapshot, if there was one. */
  snapshotOffset: number | null = null;

  private readonly shard: string;
  private readonly bigKeyBytes: number | undefined;
  private readonly decodeValues: boolean | undefined;
  /** The last full sync's snapshot (kept after its end, for its counts). */
  private snapshot: SnapshotDecoder | null = null;
  private resp = new RespParser();
  /** Offset of the first byte the RESP parser was given. */
  private respBase = 0;
  private db = 0;
  private tx = 0;
  private txSeq = 0;

  constructor(opts: DecoderOptions) {
    this.shard = opts.shard;
    this.bigKeyBytes = opts.bigKeyBytes;
    this.decodeValues = opts.decodeValues;
  }

  /** Snapshot progress: keys and RDB bytes parsed. */
  get snapshotKeys(): number {
    return this.snapshot?.keys ?? 0;
  }

  get snapshotBytes(): number {
    return this.snapshot?.bytes ?? 0;
  }

  /** Bytes received but not yet decoded into a complete command. */
  get pendingBytes(): number {
    return this.resp.bufferedBytes;
  }

  push(rec: LinkRecord): Operation[] {
    switch (rec.kind) {
      case 'fullresync':
        this.phase = 'snapshot';
        this.position = { replid: rec.replid, offset: rec.offset };
        this.snapshot = new SnapshotDecoder({ shard: this.shard, replid: rec.replid, offset: rec.offset, bigKeyBytes: this.bigKeyBytes, decodeValues: this.decodeValues });
        this.snapshotOffset = rec.offset;
        this.restartStream(rec.offset);
        return [this.snapshot.begin()];
      case 'rdb':
        return this.inSnapshot().push(rec.data);
      case 'rdb-end': {
        const ops = this.inSnapshot().finish();
        this.phase = 'stream';
        return ops;
      }
      case 'continue': {
        // Continuing where the last link stopped keeps a command cut in half by the
        // disconnect; continuing from elsewhere (a restart) starts a clean parse.
        const received = this.respBase + this.resp.offset + this.resp.bufferedBytes;
        if (this.phase !== 'stream' || received !== rec.offset) this.restartStream(rec.offset);
        this.position = { replid: rec.replid, offset: this.respBase + this.resp.offset };
        this.phase = 'stream';
        return [];
      }
      case 'stream':
        this.resp.push(rec.data);
        return this.commands();
    }
  }

  private inSnapshot(): SnapshotDecoder {
    if (this.phase !== 'snapshot' || this.snapshot === null) throw new ReplicationError('PROTOCOL', `${this.shard}: RDB data outside a full sync`);
    return this.snapshot;
  }

  private restartStream(offset: number): void {
    this.resp = new RespParser();
    this.respBase = offset;
    this.db = 0;
    this.tx = 0;
  }

  private commands(): Operation[] {
    const ops: Operation[] = [];
    const pos = this.position as ReplPosition;
    for (let v = this.resp.next(); v !== undefined; v = this.resp.next()) {
      const offset = this.respBase + this.resp.offset;
      if (!Array.isArray(v) || v.length === 0 || !v.every((a) => Buffer.isBuffer(a))) {
        throw new ReplicationError('PROTOCOL', `${this.shard}: the replication stream holds a non-command value before offset ${offset}`);
      }
      const argv = v as Buffer[];
      const command = commandOf(argv[0].toString('latin1'));
      const name = command.name;
      pos.offset = offset;
      if (LINK_ONLY.has(name)) continue;
      const args = argv.slice(1);
      if (name === 'SELECT') {
        this.db = Number(args[0]?.toString('latin1'));
        continue;
      }
      if (name === 'MULTI') this.tx = ++this.txSeq;
      ops.push({ kind: 'command', db: this.db, name, args, keys: command.keysOf(args), shard: this.shard, offset, tx: this.tx });
      if (name === 'EXEC' || name === 'DISCARD') this.tx = 0;
    }
    return ops;
  }
}
