import { SLOT_CROSS, SLOT_NONE, type CommandOp, type Operation } from '../ops/operation';
import { slotOf } from './slots';

/**
 * Gives every operation the hash slot of its keys, so a cluster destination can take it:
 *
 * - a snapshot key gets the slot of its key; snapshot-begin/-end carry no slot;
 * - a command gets the one slot of all its keys, SLOT_NONE when it has none (FLUSHALL,
 *   PUBLISH, FUNCTION LOAD …), and SLOT_CROSS when its keys span slots and it cannot be
 *   split (RENAME a b, SUNIONSTORE …: the sink applies those with applyCrossSlot);
 * - a multi-key command that is just several independent one-key writes (MSET, DEL …) and
 *   spans slots is split into one command per slot, in the order its slots first appear,
 *   each part keeping the original `db`, `shard`, `offset` and `tx`. Keys of one slot keep
 *   their order within their part, so `MSET a 1 … a 2` still leaves `a` = 2.
 * - MULTI and EXEC are removed: the members of a transaction keep their shared `tx`, and the
 *   sink runs the members of one `tx` that share a slot as one MULTI/EXEC. A transaction whose
 *   keys span slots thus becomes one transaction per slot: atomic within each slot, not across
 *   them, which is the only atomicity a cluster offers. A transaction ended by DISCARD is
 *   dropped whole (a master never replicates one; this only guards hand-made input).
 *
 * The router changes operations in place (`slot`, and `keys` of SORT … STORE, which the
 * command table of @ioredis/commands misses) and returns them with the splits in place.
 */
export class SlotRouter {
  /** Operations routed, commands split, and commands left SLOT_CROSS, since construction. */
  readonly stats = { ops: 0, split: 0, cross: 0 };

  route(ops: Operation[]): Operation[] {
    const discarded = new Set<number>();
    for (const op of ops) if (op.kind === 'command' && op.name === 'DISCARD' && op.tx !== 0) discarded.add(op.tx);
    const out: Operation[] = [];
    for (const op of ops) {
      this.stats.ops++;
      if (op.kind === 'key') {
        op.slot = slotOf(op.key);
        out.push(op);
      } else if (op.kind === 'command') {
        if (TX_MARKERS.has(op.name) || (op.tx !== 0 && discarded.has(op.tx))) continue;
        this.command(op, out);
      } else {
        out.push(op);
      }
    }
    return out;
  }

  private command(op: CommandOp, out: Operation[]): void {
    if (op.name === 'SORT') {
      const store = sortOptions(op.args).store;
      if (store >= 0 && !op.keys.includes(store)) op.keys = [...op.keys, store];
    }
    if (op.keys.length === 0) {
      op.slot = SLOT_NONE;
      out.push(op);
      return;
    }
    const slots = op.keys.map((k, j) => {
      const key = op.args[k];
      if (key === undefined) throw new TypeError(`${op.name} at offset ${op.offset}: keys[${j}] = ${k} is not an argument index`);
      return slotOf(key);
    });
    if (slots.every((s) => s === slots[0])) {
      op.slot = slots[0];
      out.push(op);
      return;
    }
    const split = SPLITTERS[op.name];
    if (split === undefined) {
      op.slot = SLOT_CROSS;
      this.stats.cross++;
      out.push(op);
      return;
    }
    this.stats.split++;
    for (const [slot, positions] of groupBySlot(slots)) out.push({ ...split(op, positions), slot });
  }
}

const TX_MARKERS = new Set(['MULTI', 'EXEC', 'DISCARD']);

/** Positions into `keys` per slot, the slots in the order they first appear. */
function groupBySlot(slots: number[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  slots.forEach((slot, position) => {
    const group = groups.get(slot);
    if (group) group.push(position);
    else groups.set(slot, [position]);
  });
  return groups;
}

/** The part of `op` with only the keys at `positions` (indexes into op.keys). */
type Splitter = (op: CommandOp, positions: number[]) => CommandOp;

const keysOnly: Splitter = (op, positions) => ({
  ...op,
  args: positions.map((p) => op.args[op.keys[p]]),
  keys: positions.map((_, i) => i),
});

const pairs = (op: CommandOp, positions: number[]): Buffer[] =>
  positions.flatMap((p) => {
    const k = op.keys[p];
    if (k + 1 >= op.args.length) throw new TypeError(`${op.name} at offset ${op.offset}: key argument ${k} has no value`);
    return [op.args[k], op.args[k + 1]];
  });

const ALL_OR_NOTHING = new Set(['NX', 'XX']);

/**
 * Commands that are a list of independent one-key writes. TOUCH only updates access times
 * (a master does not even replicate it) but costs nothing to keep apart. Not here: EXISTS,
 * MGET, SINTERCARD, ZINTERCARD, LCS and the like read, and never reach the stream.
 */
const SPLITTERS: Record<string, Splitter> = {
  DEL: keysOnly,
  UNLINK: keysOnly,
  TOUCH: keysOnly,
  MSET: (op, positions) => ({ ...op, args: pairs(op, positions), keys: positions.map((_, i) => 2 * i) }),
  /**
   * A master replicates MSETNX only when it set every key: when one exists it replies 0
   * and returns before anything changes, so nothing is propagated (t_string.c,
   * msetGenericCommand; checked against 7.0, where a failed MSETNX leaves the stream
   * untouched). A replicated MSETNX is therefore an MSET of all its pairs, and each part
   * becomes a plain MSET: a part kept as MSETNX would silently do nothing on a destination
   * that holds one of its keys already (a part applied before a crash, or data the source
   * never had), leaving the destination different from the source.
   */
  MSETNX: (op, positions) => ({ ...op, name: 'MSET', args: pairs(op, positions), keys: positions.map((_, i) => 2 * i) }),
  /**
   * MSETEX numkeys key value … [NX|XX] [EX|PX|EXAT|PXAT|KEEPTTL] (Redis 8.4): NX/XX are
   * all-or-nothing like MSETNX, so a replicated one set every key and the parts drop them;
   * the expiry options go to every part. (From the documented semantics: no 8.4 server here
   * to check how it is replicated.)
   */
  MSETEX: (op, positions) => {
    const numkeys = Number(op.args[0]?.toString('latin1'));
    if (!Number.isInteger(numkeys) || numkeys < 1) throw new TypeError(`MSETEX at offset ${op.offset}: numkeys is not a positive number`);
    const options = op.args.slice(1 + 2 * numkeys).filter((a) => !ALL_OR_NOTHING.has(a.toString('latin1').toUpperCase()));
    return {
      ...op,
      args: [Buffer.from(String(positions.length)), ...pairs(op, positions), ...options],
      keys: positions.map((_, i) => 1 + 2 * i),
    };
  },
};

/**
 * SORT's options: where it stores its result (an index into args, -1 without STORE), where
 * its GET options are (indexes of the GET words), and whether a BY or GET pattern reads
 * other keys (one without `*` reads none: BY nosort, GET #).
 */
export function sortOptions(args: Buffer[]): { store: number; gets: number[]; patterns: boolean } {
  let store = -1;
  const gets: number[] = [];
  let patterns = false;
  for (let i = 1; i < args.length; i++) {
    const word = args[i].toString('latin1').toUpperCase();
    if (word === 'BY' || word === 'GET') {
      if (word === 'GET') gets.push(i);
      if (args[i + 1]?.includes('*')) patterns = true;
      i++;
    } else if (word === 'LIMIT') {
      i += 2;
    } else if (word === 'STORE') {
      if (i + 1 < args.length) store = i + 1;
      i++;
    }
  }
  return { store, gets, patterns };
}
