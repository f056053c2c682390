import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { operationBytes, type Operation } from '../ops/operation';
import { snapshotProgress, type SnapshotProgress } from '../replication/session';
import { SnapshotDecoder } from '../replication/snapshot';

/** An RDB file on disk, or its bytes (an upload) already in memory. */
export type RdbInput = { path: string } | { bytes: Buffer };

export interface RdbFileSourceOptions {
  input: RdbInput;
  /** Names the shard in the operations and in the destination's checkpoints. Default `rdb-file`. */
  shard?: string;
  bigKeyBytes?: number;
  decodeValues?: boolean;
  /** A batch is handed on at this many operations or this many bytes (see operationBytes). */
  batchOps?: number;
  batchBytes?: number;
  /** Bytes read (or, for bytes in memory, parsed) at a time. */
  readBytes?: number;
  /** Receives the batches in order; the next waits until the promise settles (the backpressure). */
  onBatch: (ops: Operation[]) => Promise<void>;
}

export interface RdbFileProgress {
  phase: 'reading' | 'done' | 'failed' | 'stopped';
  shard: string;
  /** The path read, null for bytes. */
  path: string | null;
  snapshot: SnapshotProgress;
}

export const RDB_FILE_SHARD = 'rdb-file';

/**
 * Reads an RDB backup (a `redis-cli --rdb`, a BGSAVE's dump.rdb, a managed service's export)
 * and hands on the same snapshot operations as a replica's full sync (SnapshotDecoder), in
 * batches at the consumer's pace: a file is read a chunk at a time, and the next chunk only
 * once the batches of the last are taken, so memory stays bounded whatever the file's size;
 * bytes in memory are parsed in place, a slice at a time. Each run is a full sync of its own
 * (a new replication id), so a destination that holds an earlier load's keys sees a new one.
 */
export class RdbFileSource {
  private readonly opts: RdbFileSourceOptions;
  private readonly shard: string;
  private readonly decoder: SnapshotDecoder;
  private phase: RdbFileProgress['phase'] = 'reading';
  private size: number | null = null;
  private startedAt = 0;
  private stopping = false;

  constructor(opts: RdbFileSourceOptions) {
    this.opts = opts;
    this.shard = opts.shard ?? RDB_FILE_SHARD;
    this.decoder = new SnapshotDecoder({ shard: this.shard, replid: randomBytes(20).toString('hex'), offset: 0, bigKeyBytes: opts.bigKeyBytes, decodeValues: opts.decodeValues });
  }

  get progress(): RdbFileProgress {
    const d = this.decoder;
    const elapsed = this.startedAt === 0 ? null : Date.now() - this.startedAt;
    return {
      phase: this.phase,
      shard: this.shard,
      path: 'path' in this.opts.input ? this.opts.input.path : null,
      snapshot: snapshotProgress(d.keys, d.bytes, this.size, null, elapsed, this.phase === 'done'),
    };
  }

  /**
   * Reads the whole input and hands on its operations; resolves with the keys read, or
   * rejects with an RdbError (its offset says where the file is bad) or the file's error.
   * Batches handed on before a fault stay handed on; the operations parsed since are dropped.
   */
  async run(): Promise<{ keys: number; stopped: boolean }> {
    this.startedAt = Date.now();
    const batchOps = this.opts.batchOps ?? 1000;
    const batchBytes = this.opts.batchBytes ?? 4 * 1024 * 1024;
    let batch: Operation[] = [this.decoder.begin()];
    let bytes = 0;
    const take = async (ops: Operation[]): Promise<void> => {
      for (const op of ops) {
        batch.push(op);
        bytes += operationBytes(op);
        if (batch.length >= batchOps || bytes >= batchBytes) {
          const full = batch;
          batch = [];
          bytes = 0;
          await this.opts.onBatch(full);
        }
      }
    };
    try {
      for await (const chunk of this.chunks()) {
        if (this.stopping) break;
        await take(this.decoder.push(chunk));
      }
      if (this.stopping) {
        this.phase = 'stopped';
        return { keys: this.decoder.keys, stopped: true };
      }
      await take(this.decoder.finish());
      if (batch.length > 0) await this.opts.onBatch(batch);
      this.phase = 'done';
      return { keys: this.decoder.keys, stopped: false };
    } catch (err) {
      this.phase = 'failed';
      throw err;
    }
  }

  /** The run ends before its next chunk (with what it handed on so far applied, no snapshot-end). */
  stop(): void {
    this.stopping = true;
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    const readBytes = this.opts.readBytes ?? 256 * 1024;
    const input = this.opts.input;
    if ('bytes' in input) {
      this.size = input.bytes.length;
      for (let at = 0; at < input.bytes.length; at += readBytes) {
        yield input.bytes.subarray(at, at + readBytes);
        // a turn of the event loop per slice, as a file read has: the consumer's sends are delivered meanwhile
        await new Promise((resolve) => setImmediate(resolve));
      }
      return;
    }
    this.size = (await stat(input.path)).size;
    // async iteration pauses the stream while a chunk's batches wait for the consumer
    yield* createReadStream(input.path, { highWaterMark: readBytes }) as AsyncIterable<Buffer>;
  }
}
