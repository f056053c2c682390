/**
 * Spool: a bounded, append-only FIFO of framed records on local disk, with one writer and
 * one reader in the same process.
 *
 * Why it exists: a replica must read the master's socket as fast as the master writes, or the
 * master drops it for client-output-buffer overflow. The replica link therefore appends every
 * chunk it receives here at once (`append` is a synchronous write to the page cache, so it
 * costs no event-loop queueing and never holds the data in memory), and the pipeline consumes
 * the spool at its own pace (`next`). Memory stays bounded by the reader's 1 MiB window
 * whatever the backlog; the disk backlog is bounded by `maxBytes`, beyond which `append`
 * throws `SpoolFullError` instead of losing data silently.
 *
 * Usage:
 *
 *   const spool = await Spool.open(dir, { mode: 'resume' });
 *   socket.on('data', (chunk) => spool.append(SpoolRecord.STREAM, chunk));
 *   for await (const rec of spool) handle(rec.type, rec.data);   // ends after close() + drain
 *
 * On disk: `<dir>/<16-digit sequence>.seg` files, each an 8-byte magic ("RSSPOOL" + format
 * version) followed by frames `[type u8][length u32 LE][crc32 u32 LE][data]`. The CRC covers
 * the type, the length and the data, so a torn or garbled header is caught as well as torn data.
 * A frame never spans two segments; a segment is closed ("sealed") as soon as it reaches
 * `segmentBytes`, so it ends within one frame past that size. Sealing right away, rather than
 * when the next frame arrives, keeps the writer's open segment (which cannot be deleted) under
 * `segmentBytes`: once the reader catches up, less than that stays on disk, so a record of up
 * to `maxBytes - segmentBytes - 16` bytes always fits eventually (frame header 9, header of the
 * segment it may open 8). `maxBytes >= 2 * segmentBytes` is enforced so that this holds for
 * every record up to `segmentBytes - 16` bytes, and the spool cannot wedge with a caught-up
 * reader and a refused writer.
 *
 * `spool.lock` holds the owning process id, because two processes appending to one spool would
 * interleave their records undetectably.
 *
 * Consumption: a segment is deleted once the reader has left it and it is released. With
 * `release: 'auto'` (default) reading is releasing. With `release: 'manual'` the consumer calls
 * `release(record.position)` once the record is processed downstream, so that a crash between
 * reading and applying does not lose the record: with `mode: 'resume'` the next process replays
 * every segment still on disk. Deletion works per segment, so a replay may repeat records that
 * were already released (at-least-once); the consumer deduplicates by its own offsets.
 *
 * Durability: records survive the death of the process (they are in the kernel when `append`
 * returns) but are not fsync'ed, so a power loss may lose or garble the tail; resume then
 * truncates whatever fails its CRC at the end of the newest segment.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { SyncError } from '../errors';

/** Record types the replica link writes; the framing itself accepts any type 0-255. */
export const SpoolRecord = {
  /** JSON: the master's FULLRESYNC reply (replication id, offset); an RDB follows. */
  FULLRESYNC: 1,
  /** Raw RDB bytes, as received. */
  RDB_DATA: 2,
  /** The RDB transfer is complete. */
  RDB_END: 3,
  /** Raw replication command-stream bytes, as received. */
  STREAM: 4,
  /** JSON: the master's CONTINUE reply; the stream resumes without an RDB. */
  CONTINUE: 5,
} as const;

/**
 * Where a record ends: the cursor just past it. `release(position)` frees the record and
 * everything before it.
 */
export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
}

export interface SpoolEntry {
  readonly type: number;
  /** A Buffer of its own: safe to keep after further reads and after the segment is deleted. */
  readonly data: Buffer;
  readonly position: SpoolPosition;
}

export interface SpoolOptions {
  /** 'reset' (default) deletes the segments a previous run left; 'resume' replays them first. */
  mode?: 'reset' | 'resume';
  /** Size at which the writer seals a segment and starts a new one. Default min(64 MiB, maxBytes / 4); at most maxBytes / 2. */
  segmentBytes?: number;
  /** Bound on the bytes the spool may hold on disk (segment files, headers included). Default 4 GiB. */
  maxBytes?: number;
  /** 'auto' (default): a segment is deleted once read; 'manual': once read and released. */
  release?: 'auto' | 'manual';
}

export interface SpoolStats {
  /** Bytes of segment files on disk: written (this run or a resumed one) minus deleted. */
  bytesOnDisk: number;
  /** Segment files on disk, the writer's current one included. */
  segments: number;
  /** Frame bytes appended by this process. */
  writtenBytes: number;
  /** Frame bytes returned by `next()` in this process. */
  readBytes: number;
  /** Frame bytes on disk not yet returned by `next()`: the backlog. */
  unreadBytes: number;
}

/** What `mode: 'resume'` cut from the newest segment a previous run left behind. */
export interface SpoolRecovery {
  readonly file: string;
  readonly keptBytes: number;
  readonly droppedBytes: number;
  readonly reason: string;
}

export type SpoolErrorCode = 'FULL' | 'CORRUPT' | 'IO' | 'CLOSED' | 'LOCKED';

export class SpoolError extends SyncError<SpoolErrorCode> {
  override readonly name: string = 'SpoolError';
}

export class SpoolFullError extends SpoolError {
  override readonly name = 'SpoolFullError';
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    readonly bytesOnDisk: number,
    /** Bytes the refused append needed: its frame, plus the header of any segment it would start. */
    readonly neededBytes: number,
  ) {
    super(
      'FULL',
      `spool ${dir} is full: it holds ${formatBytes(bytesOnDisk)} on disk and the next record ` +
        `needs ${formatBytes(neededBytes)}, past the bound maxBytes = ${formatBytes(maxBytes)}; ` +
        `the consumer is slower than the source or has stopped`,
    );
  }
}

const MAGIC = Buffer.from('RSSPOOL\x01', 'latin1');
const FRAME_HEADER = 9;
const MAX_DATA = 0xffffffff;
const READ_BUFFER = 1024 * 1024;
const SEGMENT_NAME = /^(\d{16})\.seg$/;
const LOCK_FILE = 'spool.lock';
const MiB = 1024 * 1024;

/** Real paths of the spools open in this process; a lock file cannot tell us from ourselves. */
const openSpools = new Set<string>();

interface Segment {
  readonly seq: number;
  readonly file: string;
  /** Committed bytes: only whole frames, so a reader may read up to here at any moment. */
  size: number;
  /** No frame will be appended any more. */
  sealed: boolean;
}

export class Spool {
  private writeFd: number | null;
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER);
  /** Set once the writer cannot be trusted: an append could not be rolled back, or a sealed segment failed to close. */
  private writeFailure: SpoolError | null = null;
  private ended = false;
  private stopping: Promise<void> | null = null;

  private readSeg: Segment;
  private readOff = MAGIC.length;
  private window: SegmentWindow | null = null;
  private readonly readBuf = Buffer.allocUnsafe(READ_BUFFER);
  private drained = false;
  private pendingNext: Promise<SpoolEntry | null> | null = null;
  private wake: (() => void) | null = null;
  private released: SpoolPosition;
  /** Deletions run one after another so two of them never pick the same segment. */
  private gc: Promise<void> = Promise.resolve();

  private bytesOnDisk: number;
  private writtenBytes = 0;
  private readBytes = 0;
  private unreadBytes: number;

  private constructor(
    readonly dir: string,
    private readonly lockKey: string,
    private readonly segs: Segment[],
    writeFd: number,
    private readonly segmentBytes: number,
    private readonly maxBytes: number,
    private readonly releaseMode: 'auto' | 'manual',
    /** Set when resume truncated a torn tail; the link should log it. */
    readonly recovery: SpoolRecovery | null,
  ) {
    this.writeFd = writeFd;
    this.readSeg = segs[0];
    this.released = { segment: segs[0].seq, offset: 0 };
    this.bytesOnDisk = segs.reduce((sum, s) => sum + s.size, 0);
    this.unreadBytes = segs.reduce((sum, s) => sum + s.size - MAGIC.length, 0);
  }

  /** Opens (creating `dir` if needed) and takes ownership of the spool in `dir`. */
  static async open(dir: string, options: SpoolOptions = {}): Promise<Spool> {
    const mode = options.mode ?? 'reset';
    const release = options.release ?? 'auto';
    const maxBytes = options.maxBytes ?? 4096 * MiB;
    const segmentBytes = options.segmentBytes ?? Math.min(64 * MiB, Math.floor(maxBytes / 4));
    if (mode !== 'reset' && mode !== 'resume') throw new RangeError(`spool mode must be 'reset' or 'resume', not ${String(mode)}`);
    if (release !== 'auto' && release !== 'manual') throw new RangeError(`spool release must be 'auto' or 'manual', not ${String(release)}`);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 4 * MAGIC.length) {
      throw new RangeError(`spool maxBytes must be an integer >= ${4 * MAGIC.length}, not ${maxBytes}`);
    }
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= MAGIC.length || segmentBytes > maxBytes / 2) {
      throw new RangeError(
        `spool segmentBytes must be an integer > ${MAGIC.length} and at most maxBytes / 2 (${maxBytes / 2}), not ${segmentBytes}: ` +
          `the writer's open segment cannot be freed, so a smaller share of the bound would be left for the backlog`,
      );
    }

    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (err) {
      throw ioError(dir, 'creating the directory', err);
    }
    const lockKey = await lock(dir);
    try {
      const existing = await listSegments(dir);
      let segs: Segment[] = [];
      let recovery: SpoolRecovery | null = null;
      if (mode === 'reset') {
        for (const s of existing) await unlink(s.file);
      } else {
        ({ segs, recovery } = await recover(existing));
      }
      const seq = existing.length > 0 ? existing[existing.length - 1].seq + 1 : 1;
      const fresh = createSegment(dir, seq);
      segs.push(fresh.segment);
      return new Spool(dir, lockKey, segs, fresh.fd, segmentBytes, maxBytes, release, recovery);
    } catch (err) {
      await unlock(dir, lockKey);
      throw err;
    }
  }

  get stats(): SpoolStats {
    return {
      bytesOnDisk: this.bytesOnDisk,
      segments: this.segs.length,
      writtenBytes: this.writtenBytes,
      readBytes: this.readBytes,
      unreadBytes: this.unreadBytes,
    };
  }

  /**
   * Writes one record to disk before returning, so the caller may reuse `data` at once.
   * Throws SpoolFullError (nothing written) when the record would take the spool past
   * `maxBytes`, and SpoolError 'IO' when the file system fails (the partial frame is removed).
   */
  append(type: number, data: Uint8Array): void {
    if (this.writeFailure) throw this.writeFailure;
    if (this.ended) throw new SpoolError('CLOSED', `spool ${this.dir}: append after close() or stop()`);
    if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`spool record type must be 0-255, not ${type}`);
    if (data.length > MAX_DATA) throw new RangeError(`spool record of ${data.length} bytes exceeds the frame limit of ${MAX_DATA}`);

    const frame = FRAME_HEADER + data.length;
    let seg = this.segs[this.segs.length - 1];
    // Normally sealed right after the frame that fills it; a full open segment means that
    // rotation failed, and retrying it here reports the failure.
    const rotateFirst = seg.size >= this.segmentBytes;
    const rotateAfter = (rotateFirst ? MAGIC.length : seg.size) + frame >= this.segmentBytes;
    const needed = frame + (rotateFirst ? MAGIC.length : 0) + (rotateAfter ? MAGIC.length : 0);
    if (this.bytesOnDisk + needed > this.maxBytes) {
      throw new SpoolFullError(this.dir, this.maxBytes, this.bytesOnDisk, needed);
    }
    if (rotateFirst) seg = this.rotate(seg);

    const h = this.header;
    h[0] = type;
    h.writeUInt32LE(data.length, 1);
    h.writeUInt32LE(crc32(data, crc32(h.subarray(0, 5))), 5);
    const fd = this.writeFd as number;
    try {
      writeFully(fd, h, data);
    } catch (err) {
      try {
        fs.ftruncateSync(fd, seg.size);
      } catch (undoErr) {
        this.writeFailure = ioError(seg.file, `removing a partial frame after a failed append (${errorMessage(err)})`, undoErr);
        throw this.writeFailure;
      }
      throw ioError(seg.file, 'append', err);
    }
    seg.size += frame;
    this.bytesOnDisk += frame;
    this.writtenBytes += frame;
    this.unreadBytes += frame;
    if (rotateAfter) {
      try {
        this.rotate(seg);
      } catch {
        // The record is committed, so this append succeeded; the next one retries creating
        // the segment first (rotateFirst) and throws if it still fails.
      }
    }
    this.signal();
  }

  /** No more appends: the reader drains what is on disk and then gets null. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.segs[this.segs.length - 1].sealed = true;
    this.signal();
    this.closeWriter();
  }

  /**
   * The next record in append order, waiting for the writer when the reader has caught up;
   * null once the spool is closed and drained, or stopped. One reader: calls must not overlap.
   */
  next(): Promise<SpoolEntry | null> {
    if (this.pendingNext) {
      return Promise.reject(new Error('Spool.next() called while a previous call is pending: a spool has one reader'));
    }
    const p = this.readNext().finally(() => {
      this.pendingNext = null;
    });
    this.pendingNext = p;
    return p;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SpoolEntry> {
    for (let rec = await this.next(); rec; rec = await this.next()) yield rec;
  }

  /**
   * With `release: 'manual'`: the record ending at `position` and everything before it are
   * processed, so the segments they fill may be deleted (once the reader has left them).
   */
  release(position: SpoolPosition): Promise<void> {
    const r = this.readSeg;
    if (position.segment > r.seq || (position.segment === r.seq && position.offset > this.readOff)) {
      return Promise.reject(
        new RangeError(
          `spool ${this.dir}: release(${position.segment}:${position.offset}) is past the reader (${r.seq}:${this.readOff})`,
        ),
      );
    }
    if (comparePositions(position, this.released) > 0) this.released = position;
    return this.collect();
  }

  /**
   * Stops writer and reader now (a pending next() gets null), closes the files and gives up
   * the directory, keeping the segments for a later `mode: 'resume'`.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** stop(), then delete every segment and the directory itself when nothing else is in it. */
  async destroy(): Promise<void> {
    await this.stop();
    for (const s of await listSegments(this.dir)) await unlink(s.file);
    this.segs.length = 0;
    this.bytesOnDisk = 0;
    this.unreadBytes = 0;
    try {
      await fsp.rmdir(this.dir);
    } catch (err) {
      if (errorCode(err) !== 'ENOTEMPTY' && errorCode(err) !== 'EEXIST') throw ioError(this.dir, 'removing the directory', err);
    }
  }

  private rotate(old: Segment): Segment {
    const fresh = createSegment(this.dir, old.seq + 1);
    this.segs.push(fresh.segment);
    this.bytesOnDisk += MAGIC.length;
    old.sealed = true;
    const oldFd = this.writeFd as number;
    this.writeFd = fresh.fd;
    try {
      fs.closeSync(oldFd);
    } catch (err) {
      // The frames are written but the file system reports a failure (an NFS write-back error,
      // say) after the fact: trust nothing more to this spool; the next append reports it.
      this.writeFailure = ioError(old.file, 'close', err);
    }
    return fresh.segment;
  }

  private closeWriter(): void {
    const fd = this.writeFd;
    if (fd === null) return;
    this.writeFd = null;
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw ioError(this.segs[this.segs.length - 1]?.file ?? this.dir, 'close', err);
    }
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async readNext(): Promise<SpoolEntry | null> {
    for (;;) {
      if (this.stopping || this.drained) return null;
      const seg = this.readSeg;
      const avail = seg.size - this.readOff;
      if (avail > 0) return this.readFrame(seg, avail);
      if (!seg.sealed) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      const following = this.segs[this.segs.indexOf(seg) + 1];
      await this.closeWindow();
      if (following) {
        this.readSeg = following;
        this.readOff = MAGIC.length;
      } else {
        this.drained = true; // sealed with no successor: only after close()
      }
      if (this.releaseMode === 'auto') this.released = { segment: seg.seq, offset: seg.size };
      await this.collect();
    }
  }

  private async readFrame(seg: Segment, avail: number): Promise<SpoolEntry> {
    const at = this.readOff;
    if (avail < FRAME_HEADER) throw corrupt(seg.file, at, `${avail} bytes left, fewer than a frame header`);
    this.window ??= await SegmentWindow.open(seg.file, this.readBuf);
    const win = this.window;
    const h = await win.view(at, FRAME_HEADER, seg.size);
    const buf = this.readBuf;
    const type = buf[h];
    const length = buf.readUInt32LE(h + 1);
    const expected = buf.readUInt32LE(h + 5);
    const headCrc = crc32(buf.subarray(h, h + 5));
    const frame = FRAME_HEADER + length;
    if (frame > avail) throw corrupt(seg.file, at, `frame of ${length} bytes runs past the ${seg.size}-byte segment`);

    const data = Buffer.allocUnsafe(length);
    if (length > buf.length) {
      await win.readInto(data, at + FRAME_HEADER);
    } else {
      const d = await win.view(at + FRAME_HEADER, length, seg.size);
      buf.copy(data, 0, d, d + length);
    }
    if (crc32(data, headCrc) !== expected) throw corrupt(seg.file, at, 'CRC mismatch');

    this.readOff = at + frame;
    this.readBytes += frame;
    this.unreadBytes -= frame;
    return { type, data, position: { segment: seg.seq, offset: this.readOff } };
  }

  private async closeWindow(): Promise<void> {
    const win = this.window;
    this.window = null;
    await win?.close();
  }

  private collect(): Promise<void> {
    const run = this.gc.then(() => this.deleteReleased());
    // The caller of this run reports its error; later runs must still be able to proceed.
    this.gc = run.catch(() => undefined);
    return run;
  }

  private async deleteReleased(): Promise<void> {
    for (;;) {
      const s = this.segs[0];
      if (!s || !s.sealed || (s === this.readSeg && !this.drained)) return;
      // An empty segment holds nothing to release; being the oldest, all before it is gone.
      if (s.size > MAGIC.length && comparePositions(this.released, { segment: s.seq, offset: s.size }) < 0) return;
      await unlink(s.file);
      this.segs.shift();
      this.bytesOnDisk -= s.size;
    }
  }

  private async shutdown(): Promise<void> {
    this.ended = true;
    this.signal();
    const errors: unknown[] = [];
    // Its caller already received any error it had; stop only has to wait for it.
    await this.pendingNext?.catch(() => undefined);
    await this.gc;
    try {
      this.closeWriter();
    } catch (err) {
      errors.push(err);
    }
    try {
      await this.closeWindow();
    } catch (err) {
      errors.push(ioError(this.readSeg.file, 'close', err));
    }
    await unlock(this.dir, this.lockKey);
    if (errors.length > 0) throw errors[0];
  }
}

/** A read window over one segment: small frames come out of one buffer fill, not a read each. */
class SegmentWindow {
  private start = 0;
  private end = 0;

  constructor(
    private readonly file: string,
    private readonly fh: FileHandle,
    readonly buf: Buffer,
  ) {}

  static async open(file: string, buf: Buffer): Promise<SegmentWindow> {
    try {
      return new SegmentWindow(file, await fsp.open(file, 'r'), buf);
    } catch (err) {
      throw ioError(file, 'open', err);
    }
  }

  /**
   * Makes bytes [pos, pos + n) of the file available in the buffer and returns their index
   * there. `limit` is where the file's committed bytes end; n must fit the buffer.
   */
  async view(pos: number, n: number, limit: number): Promise<number> {
    if (pos >= this.start && pos + n <= this.end) return pos - this.start;
    this.start = this.end = pos; // a failed fill must not leave stale bytes looking valid
    const got = await this.fill(this.buf, 0, n, Math.min(this.buf.length, limit - pos), pos);
    this.end = pos + got;
    return 0;
  }

  /** Reads target.length bytes at pos straight into target: for frames bigger than the window. */
  async readInto(target: Buffer, pos: number): Promise<void> {
    await this.fill(target, 0, target.length, target.length, pos);
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  private async fill(target: Buffer, offset: number, min: number, max: number, pos: number): Promise<number> {
    let got = 0;
    while (got < min) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(target, offset + got, max - got, pos + got));
      } catch (err) {
        throw ioError(this.file, 'read', err);
      }
      if (n === 0) throw corrupt(this.file, pos + got, 'file ends before its committed size');
      got += n;
    }
    return got;
  }
}

function createSegment(dir: string, seq: number): { segment: Segment; fd: number } {
  const file = path.join(dir, `${String(seq).padStart(16, '0')}.seg`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'ax');
  } catch (err) {
    throw ioError(file, 'create', err);
  }
  try {
    writeFully(fd, MAGIC, Buffer.alloc(0));
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw ioError(file, 'write', err);
  }
  return { segment: { seq, file, size: MAGIC.length, sealed: false }, fd };
}

/** One syscall for header and data; regular files write short only on errors, which the loop surfaces. */
function writeFully(fd: number, head: Uint8Array, data: Uint8Array): void {
  const written = fs.writevSync(fd, [head, data]);
  let h = Math.min(written, head.length);
  let d = written - h;
  while (h < head.length) h += fs.writeSync(fd, head, h, head.length - h);
  while (d < data.length) d += fs.writeSync(fd, data, d, data.length - d);
}

async function listSegments(dir: string): Promise<{ seq: number; file: string }[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    throw ioError(dir, 'listing the directory', err);
  }
  return names
    .map((name) => SEGMENT_NAME.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ seq: Number(m[1]), file: path.join(dir, m[0]) }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * Only the newest segment can end in a torn frame: older ones were sealed by a rotation that
 * happened after their last frame was complete. Their contents are still CRC-checked, by the
 * reader, as they are read.
 */
async function recover(existing: { seq: number; file: string }[]): Promise<{ segs: Segment[]; recovery: SpoolRecovery | null }> {
  const segs: Segment[] = [];
  let recovery: SpoolRecovery | null = null;
  for (let i = 0; i < existing.length; i++) {
    const { seq, file } = existing[i];
    const newest = i === existing.length - 1;
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, newest ? 'r+' : 'r');
    } catch (err) {
      throw ioError(file, 'open', err);
    }
    let size: number;
    let kept: number;
    let reason: string | null = null;
    try {
      size = (await fh.stat()).size;
      const head = Buffer.alloc(MAGIC.length);
      const n = (await fh.read(head, 0, MAGIC.length, 0)).bytesRead;
      if (newest && n < MAGIC.length && head.subarray(0, n).equals(MAGIC.subarray(0, n))) {
        kept = 0; // killed while creating the segment: nothing in it was ever committed
        reason = 'segment creation was interrupted';
      } else if (n < MAGIC.length || !head.equals(MAGIC)) {
        throw new SpoolError(
          'CORRUPT',
          `spool ${file}: not a spool segment of format version ${MAGIC[MAGIC.length - 1]} ` +
            `(starts with ${head.subarray(0, n).toString('hex') || 'nothing'}); delete it or open with mode 'reset'`,
        );
      } else if (newest) {
        ({ length: kept, reason } = await validLength(fh, file, size));
        if (kept < size) await fh.truncate(kept);
      } else {
        kept = size;
      }
    } catch (err) {
      throw err instanceof SpoolError ? err : ioError(file, 'recovery', err);
    } finally {
      await fh.close();
    }
    if (reason !== null) recovery = { file, keptBytes: kept, droppedBytes: size - kept, reason };
    if (kept === 0) await unlink(file);
    else segs.push({ seq, file, size: kept, sealed: true });
  }
  return { segs, recovery };
}

/** Length of the longest prefix of whole frames whose CRCs match, and why the rest is not. */
async function validLength(fh: FileHandle, file: string, size: number): Promise<{ length: number; reason: string | null }> {
  const win = new SegmentWindow(file, fh, Buffer.allocUnsafe(READ_BUFFER));
  let pos = MAGIC.length;
  while (pos < size) {
    if (size - pos < FRAME_HEADER) return { length: pos, reason: `torn frame header at offset ${pos}` };
    const h = await win.view(pos, FRAME_HEADER, size);
    const length = win.buf.readUInt32LE(h + 1);
    const expected = win.buf.readUInt32LE(h + 5);
    let crc = crc32(win.buf.subarray(h, h + 5));
    if (pos + FRAME_HEADER + length > size) {
      return { length: pos, reason: `torn frame at offset ${pos}: ${length} bytes declared, ${size - pos - FRAME_HEADER} present` };
    }
    // Big frames stream through the CRC one window at a time, so memory stays bounded.
    for (let done = 0; done < length; ) {
      const n = Math.min(win.buf.length, length - done);
      const d = await win.view(pos + FRAME_HEADER + done, n, size);
      crc = crc32(win.buf.subarray(d, d + n), crc);
      done += n;
    }
    if (crc !== expected) return { length: pos, reason: `CRC mismatch in the frame at offset ${pos}` };
    pos += FRAME_HEADER + length;
  }
  return { length: size, reason: null };
}

async function lock(dir: string): Promise<string> {
  let key: string;
  try {
    key = await fsp.realpath(dir);
  } catch (err) {
    throw ioError(dir, 'resolving the path', err);
  }
  if (openSpools.has(key)) throw new SpoolError('LOCKED', `spool ${dir} is already open in this process; stop() it first`);
  openSpools.add(key);
  const file = path.join(dir, LOCK_FILE);
  try {
    for (;;) {
      try {
        await fsp.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
        return key;
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      const owner = Number.parseInt(await readIfExists(file), 10);
      // Our own pid with no open spool here means an earlier incarnation (say, a container
      // restart where we are pid 1 again) left the file.
      if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
        throw new SpoolError('LOCKED', `spool ${dir} is in use by process ${owner} (see ${file})`);
      }
      await fsp.rm(file, { force: true });
    }
  } catch (err) {
    openSpools.delete(key);
    throw err instanceof SpoolError ? err : ioError(file, 'taking the lock', err);
  }
}

async function unlock(dir: string, key: string): Promise<void> {
  openSpools.delete(key);
  try {
    await fsp.rm(path.join(dir, LOCK_FILE), { force: true });
  } catch (err) {
    throw ioError(path.join(dir, LOCK_FILE), 'removing the lock', err);
  }
}

async function readIfExists(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return '';
    throw err;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM'; // exists, but belongs to another user
  }
}

async function unlink(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    throw ioError(file, 'delete', err);
  }
}

function comparePositions(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment !== b.segment ? a.segment - b.segment : a.offset - b.offset;
}

function corrupt(file: string, offset: number, detail: string): SpoolError {
  return new SpoolError('CORRUPT', `spool ${file}: corrupt frame at offset ${offset}: ${detail}`);
}

function ioError(file: string, op: string, err: unknown): SpoolError {
  return new SpoolError('IO', `spool ${file}: ${op} failed: ${errorMessage(err)}`, { cause: err });
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function formatBytes(n: number): string {
  return `${n} bytes (${(n / MiB).toFixed(1)} MiB)`;
}
