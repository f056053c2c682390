/** Hash slots of a Redis Cluster (cluster.h, CLUSTER_SLOTS). */
export const SLOT_COUNT = 16384;

/** Inclusive, as in CLUSTER ADDSLOTSRANGE. */
export type SlotRange = [start: number, end: number];

/** `0-5460,6000`: how slot ranges are written in messages and in shard names. */
export function formatSlotRanges(ranges: readonly SlotRange[]): string {
  return ranges.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(',');
}

/** One `start-end` or `slot` of that text (CLUSTER NODES lists a node's slots the same way). */
export function parseSlotRange(token: string): SlotRange {
  const [start, end = start] = token.split('-');
  return [slotNumber(start), slotNumber(end)];
}

/** The ranges formatSlotRanges wrote. */
export function parseSlotRanges(text: string): SlotRange[] {
  return text.split(',').map(parseSlotRange);
}

function slotNumber(digits: string): number {
  if (!/^\d+$/.test(digits)) throw new Error(`bad slot: ${JSON.stringify(digits)}`);
  return Number(digits);
}

/** Sorted, adjacent and overlapping ranges merged; throws on a range outside 0-16383 or upside down. */
export function normalizeSlotRanges(ranges: readonly SlotRange[]): SlotRange[] {
  for (const [start, end] of ranges) {
    if (!(start >= 0 && start <= end && end < SLOT_COUNT)) throw new Error(`bad slot range ${start}-${end}`);
  }
  const merged: SlotRange[] = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged.at(-1);
    if (last !== undefined && start <= last[1] + 1) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with, by byte. */
const CRC16 = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/**
 * The hash slot of a key, as Redis computes it (cluster.c, keyHashSlot): the bytes between
 * the first `{` and the first `}` after it when there are any, else the whole key. Not
 * cluster-key-slot's calculate(): for a key like `a{}{b}` (an empty first tag) it hashes
 * `{b` where Redis hashes the whole key, and a wrong slot sends a write to the wrong node.
 */
export function slotOf(key: Buffer | string): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  const open = bytes.indexOf(OPEN);
  if (open >= 0) {
    const close = bytes.indexOf(CLOSE, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(bytes, 0, bytes.length) & (SLOT_COUNT - 1);
}

/**
 * The output of `n` that a slot goes to: contiguous ranges of slots, exactly as `redis-cli
 * --cluster create` splits the slots among `n` masters, so with `n` equal to the number of
 * masters of a destination created that way each output writes to one master. A slot always
 * maps to the same output for a given `n`, which is what keeps the operations on one key in
 * order.
 */
export function partitionOf(slot: number, n: number): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`partitionOf: ${slot} is not a hash slot`);
  if (!Number.isInteger(n) || n < 1 || n > SLOT_COUNT) throw new RangeError(`partitionOf: ${n} is not a number of partitions`);
  let table = partitionTables.get(n);
  if (table === undefined) {
    table = evenSplit(n);
    partitionTables.set(n, table);
  }
  return table[slot];
}

const partitionTables = new Map<number, Uint16Array>();

/**
 * redis-cli's split (clusterManagerCommandCreate), in its single-precision arithmetic so the
 * boundaries come out the same: master i gets the slots up to lround(cursor + per - 1),
 * cursor advancing by per = 16384 / n, the last master the rest.
 */
function evenSplit(n: number): Uint16Array {
  const table = new Uint16Array(SLOT_COUNT);
  const per = Math.fround(SLOT_COUNT / n);
  let cursor = Math.fround(0);
  let first = 0;
  for (let i = 0; i < n; i++) {
    let last = Math.round(Math.fround(Math.fround(cursor + per) - 1));
    if (last > SLOT_COUNT || i === n - 1) last = SLOT_COUNT - 1;
    if (last < first) last = first;
    table.fill(i, first, last + 1);
    first = last + 1;
    cursor = Math.fround(cursor + per);
  }
  return table;
}

let tags: string[] | null = null;

/**
 * The first of 0, 1, 2 … written in base 36 ("0" … "z", "10" …) that lands in each slot: a
 * fixed order, so the tag of a slot is the same in every process and every release (keys
 * named with it, such as checkpoints, must be found again after a restart or an upgrade),
 * and the very table lib/sink/checkpoints.ts builds for its checkpoint keys (its candidates
 * hold no brace, so cluster-key-slot's hash of them is the plain one). No brace can
 * occur in it (which would end the tag); four characters at most.
 */
function buildTags(): string[] {
  const table = new Array<string>(SLOT_COUNT);
  for (let i = 0, found = 0; found < SLOT_COUNT; i++) {
    const candidate = i.toString(36);
    const slot = slotOf(candidate);
    if (table[slot] === undefined) {
      table[slot] = candidate;
      found++;
    }
  }
  return table;
}

/**
 * A short string whose hash slot is `slot`: the key `{<tag>}anything` lives in that slot. A
 * sink uses it to put a key of its own (a checkpoint, a temporary copy) next to the keys it
 * writes, so both go into one MULTI on one node.
 */
export function hashTagForSlot(slot: number): string {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`hashTagForSlot: ${slot} is not a hash slot`);
  tags ??= buildTags();
  return tags[slot];
}

const shardTables = new Map<string, Uint8Array>();

/**
 * The slots a cluster source's shard owns, from its name (`slots:0-5460,6000`, see shardKey
 * in lib/replication/source.ts), as a table of 0/1 per slot; null for a standalone source.
 */
export function slotsOfShard(shard: string): Uint8Array | null {
  if (!shard.startsWith('slots:')) return null;
  let table = shardTables.get(shard);
  if (table === undefined) {
    table = new Uint8Array(SLOT_COUNT);
    for (const [start, end] of parseSlotRanges(shard.slice('slots:'.length))) table.fill(1, start, end + 1);
    if (shardTables.size >= 64) shardTables.clear();
    shardTables.set(shard, table);
  }
  return table;
}
