import { splitterOf, TX_MARKERS } from '../ops/commands';
import { SLOT_CROSS, SLOT_NONE, type CommandOp, type Operation } from '../ops/operation';
import { slotOf } from './slots';

/**
 * Gives every operation the hash slot of its keys, so a cluster destination can take it:
 *
 * - a snapshot key gets the slot of its key; snapshot-begin/-end carry no slot;
 * - a command gets the one slot of all its keys, SLOT_NONE when it has none (FLUSHALL,
 *   PUBLISH, FUNCTION LOAD …), and SLOT_CROSS when its keys span slots and it cannot be
 *   split (RENAME a b, SUNIONSTORE …: the sink applies those with applyCrossSlot);
 * - a multi-key command that is just several independent one-key writes (MSET, DEL …: those
 *   with a splitter in lib/ops/commands.ts) and spans slots is split into one command per slot, in the order its slots first appear,
 *   each part keeping the original `db`, `shard`, `offset` and `tx`. Keys of one slot keep
 *   their order within their part, so `MSET a 1 … a 2` still leaves `a` = 2.
 * - MULTI and EXEC are removed: the members of a transaction keep their shared `tx`, and the
 *   sink runs the members of one `tx` that share a slot as one MULTI/EXEC. A transaction whose
 *   keys span slots thus becomes one transaction per slot: atomic within each slot, not across
 *   them, which is the only atomicity a cluster offers. A transaction ended by DISCARD is
 *   dropped whole (a master never replicates one; this only guards hand-made input).
 *
 * The router changes operations in place (`slot`) and returns them with the splits in place.
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
    const split = splitterOf(op.name);
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
