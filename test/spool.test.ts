import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { Spool, SpoolError, SpoolFullError, SpoolRecord, type SpoolEntry, type SpoolOptions } from '../lib/replication/spool';
import { prng } from './support/random';

const MiB = 1024 * 1024;
const MAGIC = Buffer.from('RSSPOOL\x01', 'latin1');
const HEADER = 9;

const POOL = (() => {
  const rnd = prng(7);
  const words = new Uint32Array((4 * MiB) / 4);
  for (let i = 0; i < words.length; i++) words[i] = (rnd() * 4294967296) >>> 0;
  return Buffer.from(words.buffer);
})();

/**
 * The content of record i: a slice of a random pool at an offset depending on i, stamped with
 * i, so a reordered, repeated or shifted record cannot compare equal. Writer and checker each
 * regenerate it, so 500 MB can be verified without holding 500 MB.
 */
function content(i: number, size: number, into: Buffer): Buffer {
  const off = (i * 65599) % (POOL.length - size + 1);
  const out = into.subarray(0, size);
  POOL.copy(out, 0, off, off + size);
  if (size >= 4) out.writeUInt32LE(i, 0);
  return out;
}

/** Sizes from 0 bytes to 3 MB, skewed the way a replication stream is: mostly small. */
function sizes(seed: number, n: number): number[] {
  const rnd = prng(seed);
  return Array.from({ length: n }, () => {
    const r = rnd();
    if (r < 0.1) return 0;
    if (r < 0.2) return 1 + Math.floor(rnd() * 16);
    if (r < 0.85) return Math.floor(rnd() * 64 * 1024);
    return MiB + Math.floor(rnd() * 2 * MiB); // bigger than a segment and than the read window
  });
}

const TYPES = Object.values(SpoolRecord);

function segFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}

function diskBytes(dir: string): number {
  return segFiles(dir).reduce((sum, n) => sum + fs.statSync(path.join(dir, n)).size, 0);
}

/** Decodes a segment file independently of the module under test. */
function parseSegment(file: string): { type: number; data: Buffer }[] {
  const buf = fs.readFileSync(file);
  assert.deepEqual(buf.subarray(0, 8), MAGIC);
  const frames: { type: number; data: Buffer }[] = [];
  let pos = 8;
  while (pos < buf.length) {
    const len = buf.readUInt32LE(pos + 1);
    const data = buf.subarray(pos + HEADER, pos + HEADER + len);
    assert.equal(data.length, len, `frame at ${pos} of ${file} is cut by the end of the file`);
    assert.equal(crc32(data, crc32(buf.subarray(pos, pos + 5))), buf.readUInt32LE(pos + 5));
    frames.push({ type: buf[pos], data });
    pos += HEADER + len;
  }
  return frames;
}

/** Resolves with what the promise settled to, or 'pending' if it has not after a few turns of the event loop. */
async function settled<T>(p: Promise<T>): Promise<T | 'pending'> {
  const timer = new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 20));
  return Promise.race([p, timer]);
}

describe('spool', function () {
  let dir: string;
  let open: Spool[];

  beforeEach(function () {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spool-test-')), 'spool');
    open = [];
  });

  afterEach(async function () {
    for (const s of open) await s.stop().catch(() => undefined);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  async function openSpool(options?: SpoolOptions): Promise<Spool> {
    const s = await Spool.open(dir, options);
    open.push(s);
    return s;
  }

  it('keeps order and content across many rotations, records of 0 bytes to 3 MB, reader running alongside', async function () {
    const spool = await openSpool({ segmentBytes: MiB });
    const plan = sizes(1, 300);
    const scratch = Buffer.allocUnsafe(3 * MiB);
    const expected = Buffer.allocUnsafe(3 * MiB);
    let maxSegments = 0;

    const reader = (async () => {
      let i = 0;
      for await (const rec of spool) {
        assert.ok(i < plan.length, 'more records than were written');
        assert.equal(rec.type, TYPES[i % TYPES.length], `type of record ${i}`);
        assert.ok(rec.data.equals(content(i, plan[i], expected)), `content of record ${i} (${plan[i]} bytes)`);
        i++;
      }
      return i;
    })();
    reader.catch(() => undefined); // a failed check is reported by `await reader` below, not as unhandled

    for (let i = 0; i < plan.length; i++) {
      spool.append(TYPES[i % TYPES.length], content(i, plan[i], scratch)); // scratch reused: append must copy
      maxSegments = Math.max(maxSegments, spool.stats.segments);
      if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const written = plan.reduce((sum, n) => sum + HEADER + n, 0);
    assert.equal(spool.stats.writtenBytes, written);
    spool.close();

    assert.equal(await reader, plan.length);
    assert.ok(maxSegments > 3, `expected several segments on disk at once, saw at most ${maxSegments}`);
    assert.deepEqual(spool.stats, { bytesOnDisk: 0, segments: 0, writtenBytes: written, readBytes: written, unreadBytes: 0 });
    assert.deepEqual(segFiles(dir), []);
  });

  it('returns records as Buffers of their own, still intact after later reads', async function () {
    const spool = await openSpool({ segmentBytes: 64 * 1024 });
    const plan = Array.from({ length: 2000 }, (_, i) => (i * 37) % 501);
    const scratch = Buffer.allocUnsafe(1024);
    for (let i = 0; i < plan.length; i++) spool.append(7, content(i, plan[i], scratch));
    spool.close();

    const kept: SpoolEntry[] = [];
    for await (const rec of spool) kept.push(rec);
    assert.equal(kept.length, plan.length);
    const expected = Buffer.allocUnsafe(1024);
    for (let i = 0; i < plan.length; i++) {
      assert.equal(kept[i].type, 7);
      assert.ok(kept[i].data.equals(content(i, plan[i], expected)), `record ${i} changed after later reads`);
    }
  });

  it('lays frames out as documented, seals a segment once it reaches segmentBytes, never splits a frame', async function () {
    const spool = await openSpool({ segmentBytes: 1000 });
    const plan = [0, 500, 600, 2000, 10, 10, 0, 900, 27, 982, 0];
    const scratch = Buffer.allocUnsafe(4096);
    plan.forEach((n, i) => spool.append(i, content(i, n, scratch)));

    const files = segFiles(dir);
    const frames = files.map((f) => parseSegment(path.join(dir, f)));
    // 8 (magic) + 9 + 0 + 509 + 609 = 1135 >= 1000: sealed after the frame that crossed;
    // 8 + 2009 alone; 8 + 19 + 19 + 9 + 909 + 36 = 1000 exactly: sealed; 8 + 991 = 999 stays
    // open, + 9 = 1008 seals it, and a new empty segment waits for the next record.
    assert.deepEqual(
      frames.map((fr) => fr.map((f) => f.data.length)),
      [[0, 500, 600], [2000], [10, 10, 0, 900, 27], [982, 0], []],
    );
    assert.deepEqual(
      files.map((f) => fs.statSync(path.join(dir, f)).size),
      [1135, 2017, 1000, 1008, 8],
    );
    frames.flat().forEach((f, i) => {
      assert.equal(f.type, i);
      assert.ok(f.data.equals(content(i, plan[i], scratch)));
    });
    assert.equal(spool.stats.bytesOnDisk, diskBytes(dir));
    assert.deepEqual(files, [1, 2, 3, 4, 5].map((n) => `${String(n).padStart(16, '0')}.seg`));
  });

  it('wakes a waiting reader on the next append, and on close() with null', async function () {
    const spool = await openSpool();
    const first = spool.next();
    assert.equal(await settled(first), 'pending');
    spool.append(SpoolRecord.STREAM, Buffer.from('SET k v'));
    const rec = await first;
    assert.ok(rec);
    assert.equal(rec.type, SpoolRecord.STREAM);
    assert.equal(rec.data.toString(), 'SET k v');

    const second = spool.next();
    assert.equal(await settled(second), 'pending');
    await assert.rejects(spool.next(), /previous call is pending/);
    spool.close();
    assert.equal(await second, null);
  });

  it('deletes each segment once the reader has passed it (auto release)', async function () {
    const frame = HEADER + 1000;
    const spool = await openSpool({ segmentBytes: 8 + 4 * frame });
    const data = Buffer.alloc(1000, 1);
    for (let i = 0; i < 40; i++) spool.append(SpoolRecord.RDB_DATA, data);
    assert.equal(segFiles(dir).length, 11, '10 full segments and the empty one the writer is in');
    assert.equal(spool.stats.segments, 11);
    assert.equal(spool.stats.bytesOnDisk, 10 * (8 + 4 * frame) + 8);
    assert.equal(spool.stats.bytesOnDisk, diskBytes(dir));

    // Reading the whole first segment does not delete it yet (the reader is still in it)...
    for (let i = 0; i < 4; i++) assert.ok(await spool.next());
    assert.equal(segFiles(dir).length, 11);
    // ...leaving it does.
    assert.ok(await spool.next());
    assert.equal(segFiles(dir).length, 10);
    for (let i = 0; i < 20; i++) assert.ok(await spool.next());
    assert.equal(segFiles(dir).length, 5);
    assert.equal(spool.stats.bytesOnDisk, diskBytes(dir));
    assert.equal(spool.stats.unreadBytes, 15 * frame);

    for (let i = 0; i < 15; i++) assert.ok(await spool.next());
    assert.equal(segFiles(dir).length, 2);
    const waiting = spool.next();
    assert.equal(await settled(waiting), 'pending');
    assert.deepEqual(segFiles(dir), ['0000000000000011.seg'], 'only the segment the writer is in is left');
    assert.equal(spool.stats.bytesOnDisk, 8);
    spool.close();
    assert.equal(await waiting, null);
    assert.deepEqual(segFiles(dir), []);
    assert.equal(spool.stats.bytesOnDisk, 0);
  });

  it('with manual release, deletes only what was released', async function () {
    const spool = await openSpool({ segmentBytes: 8 + 2 * (HEADER + 100), release: 'manual' });
    for (let i = 0; i < 6; i++) spool.append(1, Buffer.alloc(100, i));
    assert.equal(segFiles(dir).length, 4);
    const recs: SpoolEntry[] = [];
    for (let i = 0; i < 5; i++) recs.push((await spool.next()) as SpoolEntry);
    assert.equal(segFiles(dir).length, 4, 'reading alone deletes nothing');

    await assert.rejects(spool.release({ segment: recs[4].position.segment, offset: recs[4].position.offset + 1 }), RangeError);
    await spool.release(recs[0].position);
    assert.equal(segFiles(dir).length, 4, 'half of segment 1 released');
    await spool.release(recs[3].position);
    assert.equal(segFiles(dir).length, 2);
    assert.equal(spool.stats.bytesOnDisk, diskBytes(dir));
    await spool.release(recs[1].position); // going back is a no-op
    assert.equal(segFiles(dir).length, 2);

    spool.close();
    const last = (await spool.next()) as SpoolEntry;
    assert.equal(last.data[0], 5);
    assert.equal(await spool.next(), null);
    assert.equal(segFiles(dir).length, 2, 'drained but not released');
    await spool.release(last.position);
    assert.deepEqual(segFiles(dir), []);
  });

  it('throws SpoolFullError at the bound and writes nothing partial', async function () {
    const spool = await openSpool({ segmentBytes: 1000, maxBytes: 2000 });
    // Segment 1: 8 + 10 * 109 = 1098, sealed; segment 2: 8 + 8 * 109 + 22 = 902; 1098 + 902 = 2000.
    for (let i = 0; i < 18; i++) spool.append(SpoolRecord.RDB_DATA, Buffer.alloc(100, i));
    spool.append(SpoolRecord.RDB_END, Buffer.alloc(13));
    assert.equal(spool.stats.bytesOnDisk, 2000);

    const before = diskBytes(dir);
    assert.throws(
      () => spool.append(SpoolRecord.STREAM, Buffer.alloc(0)),
      (e: unknown) => {
        assert.ok(e instanceof SpoolFullError);
        assert.ok(e instanceof SpoolError);
        assert.equal(e.code, 'FULL');
        assert.equal(e.dir, dir);
        assert.equal(e.maxBytes, 2000);
        assert.equal(e.bytesOnDisk, 2000);
        assert.equal(e.neededBytes, HEADER);
        assert.equal(
          e.message,
          `spool ${dir} is full: it holds 2000 bytes (0.0 MiB) on disk and the next record needs 9 bytes (0.0 MiB), ` +
            `past the bound maxBytes = 2000 bytes (0.0 MiB); the consumer is slower than the source or has stopped`,
        );
        return true;
      },
    );
    assert.equal(diskBytes(dir), before);
    assert.equal(spool.stats.bytesOnDisk, 2000);
    assert.equal(spool.stats.writtenBytes, 18 * 109 + 22);

    const got: number[] = [];
    for (let i = 0; i < 19; i++) got.push(((await spool.next()) as SpoolEntry).data.length);
    assert.deepEqual(got, [...Array<number>(18).fill(100), 13]);
    assert.equal(await settled(spool.next()), 'pending', 'the refused record was not written');
    // Reading freed segment 1, so there is room again.
    assert.equal(spool.stats.bytesOnDisk, 902);
    spool.append(SpoolRecord.STREAM, Buffer.alloc(100));
  });

  it('counts the header of the segment a record would open against the bound; a caught-up reader leaves room', async function () {
    const spool = await openSpool({ segmentBytes: 1000, maxBytes: 2000 });
    const fill = 1000 - 8 - HEADER; // one record that fills a segment exactly
    spool.append(1, Buffer.alloc(fill));
    assert.equal(spool.stats.bytesOnDisk, 1008);
    // 1008 + 992 = 2000 would fit, but sealing segment 2 opens segment 3: 8 more bytes.
    assert.throws(
      () => spool.append(1, Buffer.alloc(fill)),
      (e: unknown) => e instanceof SpoolFullError && e.neededBytes === 1000,
    );
    assert.equal(segFiles(dir).length, 2, 'no new segment was created for the refused record');
    spool.append(1, Buffer.alloc(968)); // segment 2: 8 + 977 = 985, stays open
    spool.append(1, Buffer.alloc(5)); // 985 + 14 = 999: the fullest an open segment gets
    assert.equal(spool.stats.bytesOnDisk, 1999);

    for (const n of [fill, 968, 5]) assert.equal((await spool.next())?.data.length, n);
    assert.equal(await settled(spool.next()), 'pending');
    assert.equal(spool.stats.bytesOnDisk, 999, 'segment 1 deleted; the open segment stays');
    // maxBytes - segmentBytes - 16 = 984 bytes is the documented guarantee, and it is exact.
    assert.throws(() => spool.append(1, Buffer.alloc(985)), SpoolFullError);
    spool.append(1, Buffer.alloc(984));
    assert.equal(spool.stats.bytesOnDisk, 2000);
  });

  it('resumes: replays what a previous run left and cuts a torn last frame', async function () {
    const first = await openSpool({ segmentBytes: 8 + 2 * (HEADER + 50) });
    for (let i = 0; i < 5; i++) first.append(SpoolRecord.STREAM, Buffer.alloc(50, i));
    assert.equal((await first.next())?.data[0], 0); // consumed, but its segment is not left yet
    await first.stop();
    const files = segFiles(dir);
    assert.equal(files.length, 3);
    // The process dies in the middle of a write: a header promising 1000 bytes, 10 present.
    const torn = Buffer.alloc(HEADER + 10, 0xee);
    torn[0] = SpoolRecord.STREAM;
    torn.writeUInt32LE(1000, 1);
    const last = path.join(dir, files[2]);
    const sizeBefore = fs.statSync(last).size;
    fs.appendFileSync(last, torn);

    const spool = await openSpool({ mode: 'resume' });
    assert.deepEqual(spool.recovery, {
      file: last,
      keptBytes: sizeBefore,
      droppedBytes: torn.length,
      reason: `torn frame at offset ${sizeBefore}: 1000 bytes declared, 10 present`,
    });
    assert.equal(fs.statSync(last).size, sizeBefore);
    spool.append(SpoolRecord.CONTINUE, Buffer.from('{"offset":42}'));
    assert.deepEqual(segFiles(dir), [...files, '0000000000000004.seg']);
    spool.close();
    const got: string[] = [];
    for await (const rec of spool) got.push(`${rec.type}:${rec.data.length === 50 ? rec.data[0] : rec.data.toString()}`);
    assert.deepEqual(got, ['4:0', '4:1', '4:2', '4:3', '4:4', '5:{"offset":42}']);
  });

  it('resume cuts a last frame whose CRC fails, and a segment whose creation was interrupted', async function () {
    const first = await openSpool();
    for (let i = 0; i < 3; i++) first.append(1, Buffer.alloc(20, i));
    await first.stop();
    const [file] = segFiles(dir);
    const bytes = fs.readFileSync(path.join(dir, file));
    bytes[bytes.length - 1] ^= 0xff; // last byte of the third record's data
    fs.writeFileSync(path.join(dir, file), bytes);
    fs.writeFileSync(path.join(dir, '0000000000000002.seg'), MAGIC.subarray(0, 3));

    // The interrupted segment is the newest, so the CRC check of segment 1 falls to the reader.
    const second = await openSpool({ mode: 'resume' });
    assert.equal(second.recovery?.reason, 'segment creation was interrupted');
    assert.equal(second.recovery?.droppedBytes, 3);
    assert.deepEqual(segFiles(dir), [file, '0000000000000003.seg']);
    assert.equal((await second.next())?.data[0], 0);
    assert.equal((await second.next())?.data[0], 1);
    await assert.rejects(second.next(), (e: unknown) => {
      assert.ok(e instanceof SpoolError);
      assert.equal(e.code, 'CORRUPT');
      assert.equal(e.message, `spool ${path.join(dir, file)}: corrupt frame at offset ${8 + 2 * 29}: CRC mismatch`);
      return true;
    });
    await second.stop();

    // Once the interrupted segment is gone, segment 3 (empty) is the newest and 1 is trusted
    // as sealed; remove 3 so that segment 1 is the one scanned.
    fs.rmSync(path.join(dir, '0000000000000003.seg'));
    const third = await openSpool({ mode: 'resume' });
    assert.equal(third.recovery?.reason, `CRC mismatch in the frame at offset ${8 + 2 * 29}`);
    assert.equal(third.recovery?.droppedBytes, 29);
    third.close();
    const got: number[] = [];
    for await (const rec of third) got.push(rec.data[0]);
    assert.deepEqual(got, [0, 1]);
  });

  it('surfaces file-system errors from the reader, naming the file', async function () {
    const spool = await openSpool({ segmentBytes: 100 });
    for (let i = 0; i < 4; i++) spool.append(1, Buffer.alloc(90, i)); // one segment each
    const victim = path.join(dir, '0000000000000002.seg');
    fs.rmSync(victim);
    assert.equal((await spool.next())?.data[0], 0);
    await assert.rejects(spool.next(), (e: unknown) => {
      assert.ok(e instanceof SpoolError);
      assert.equal(e.code, 'IO');
      assert.match(e.message, new RegExp(`^spool ${victim}: open failed: ENOENT`));
      return true;
    });
  });

  it('reset (the default) deletes what a previous run left; a foreign file stops resume', async function () {
    const first = await openSpool();
    first.append(1, Buffer.from('old'));
    await first.stop();
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours');

    const second = await openSpool();
    assert.deepEqual(segFiles(dir), ['0000000000000002.seg']);
    assert.equal(second.stats.unreadBytes, 0);
    assert.equal(await settled(second.next()), 'pending');
    await second.stop();

    fs.writeFileSync(path.join(dir, '0000000000000001.seg'), 'GARBAGE!data');
    await assert.rejects(Spool.open(dir, { mode: 'resume' }), (e: unknown) => {
      assert.ok(e instanceof SpoolError);
      assert.equal(e.code, 'CORRUPT');
      assert.match(e.message, /0000000000000001\.seg: not a spool segment of format version 1 \(starts with 4741524241474521\)/);
      return true;
    });
    // The failed open gave the directory back.
    const third = await openSpool();
    assert.deepEqual(segFiles(dir), ['0000000000000003.seg']);
    await third.destroy();
    assert.deepEqual(fs.readdirSync(dir), ['notes.txt'], 'destroy leaves files that are not its own');
  });

  it('keeps memory bounded: 500 MB appended while the reader waits, then all read back intact', async function () {
    const chunk = 64 * 1024;
    const count = Math.ceil((500 * 1000 * 1000) / chunk);
    const spool = await openSpool();
    const scratch = Buffer.allocUnsafe(chunk);
    spool.append(SpoolRecord.STREAM, content(0, chunk, scratch));
    const rssBefore = process.memoryUsage().rss;
    for (let i = 1; i < count; i++) spool.append(SpoolRecord.STREAM, content(i, chunk, scratch));
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 40 * MiB, `rss grew by ${(growth / MiB).toFixed(1)} MiB while appending 500 MB`);
    assert.equal(spool.stats.unreadBytes, count * (HEADER + chunk));
    assert.equal(spool.stats.bytesOnDisk, diskBytes(dir));

    spool.close();
    const expected = Buffer.allocUnsafe(chunk);
    let i = 0;
    for await (const rec of spool) {
      if (!rec.data.equals(content(i, chunk, expected))) assert.fail(`record ${i} differs`);
      i++;
    }
    assert.equal(i, count);
    const total = process.memoryUsage().rss - rssBefore;
    assert.ok(total < 60 * MiB, `rss grew by ${(total / MiB).toFixed(1)} MiB over the write and the read`);
    assert.deepEqual(segFiles(dir), []);
  });

  it('close(): further appends throw, the reader drains and then gets null, again and again', async function () {
    const spool = await openSpool();
    spool.append(SpoolRecord.FULLRESYNC, Buffer.from('{"replid":"x","offset":0}'));
    spool.append(SpoolRecord.RDB_END, Buffer.alloc(0));
    spool.close();
    assert.throws(() => spool.append(1, Buffer.alloc(1)), (e: unknown) => e instanceof SpoolError && e.code === 'CLOSED');
    assert.equal((await spool.next())?.type, SpoolRecord.FULLRESYNC);
    const end = await spool.next();
    assert.equal(end?.type, SpoolRecord.RDB_END);
    assert.equal(end?.data.length, 0);
    assert.equal(await spool.next(), null);
    assert.equal(await spool.next(), null);
  });

  it('destroy(): a waiting reader gets null and the files are gone', async function () {
    const spool = await openSpool({ segmentBytes: 100 });
    for (let i = 0; i < 5; i++) spool.append(1, Buffer.alloc(80));
    for (let i = 0; i < 5; i++) assert.ok(await spool.next());
    const waiting = spool.next();
    await spool.destroy();
    assert.equal(await waiting, null);
    assert.equal(fs.existsSync(dir), false);
    assert.throws(() => spool.append(1, Buffer.alloc(1)), SpoolError);
  });

  it('refuses a second owner of the directory and takes over a lock whose process is gone', async function () {
    const spool = await openSpool();
    await assert.rejects(Spool.open(dir), (e: unknown) => e instanceof SpoolError && e.code === 'LOCKED');
    await spool.stop();

    // Another live process holds it.
    fs.writeFileSync(path.join(dir, 'spool.lock'), `${process.ppid}\n`);
    await assert.rejects(Spool.open(dir), new RegExp(`in use by process ${process.ppid}`));

    // A dead process held it.
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']));
    fs.writeFileSync(path.join(dir, 'spool.lock'), `${dead}\n`);
    const again = await openSpool();
    assert.equal(fs.readFileSync(path.join(dir, 'spool.lock'), 'utf8'), `${process.pid}\n`);
    await again.stop();
    assert.equal(fs.existsSync(path.join(dir, 'spool.lock')), false);
  });

  it('rejects bad arguments', async function () {
    await assert.rejects(Spool.open(dir, { segmentBytes: 8 }), RangeError);
    await assert.rejects(Spool.open(dir, { maxBytes: 1000.5 }), RangeError);
    await assert.rejects(Spool.open(dir, { maxBytes: 1000, segmentBytes: 501 }), /at most maxBytes \/ 2/);
    const spool = await openSpool();
    assert.throws(() => spool.append(256, Buffer.alloc(0)), RangeError);
    assert.throws(() => spool.append(-1, Buffer.alloc(0)), RangeError);
    assert.equal(spool.stats.writtenBytes, 0);
  });
});
