import { NAMES_A_DB, NOT_IN_A_DB } from '../ops/commands';
import type { CommandOp, Operation } from '../ops/operation';

/**
 * The dbs a destination has: a cluster db 0 only, a server as many as its `databases` (a
 * db of the source at or above that count has nowhere to go). No command a source may
 * replicate stops the sink for want of a db (README, "Commands between dbs"): what keeps its
 * meaning in the dbs the destination has is carried out there, the rest is dropped and
 * counted under a label, said once per label:
 *
 * - an operation of a db the destination lacks: dropped (`db <n>`), since nothing of that
 *   db is on the destination for it to act on;
 * - MOVE key n from a db it has into one it lacks: DEL key, which is what the source's db
 *   saw (the key's life in db n is dropped, `db <n>`); from a db it lacks into one it has:
 *   dropped (`MOVE`), and that db then lacks the key;
 * - COPY … DB n into a db it lacks: dropped (`db <n>`), the source's db is unchanged; from a
 *   db it lacks into one it has: dropped (`COPY`); on a cluster, COPY … DB 0 in db 0 loses
 *   the option, which names the only db there is (a cluster refuses no such COPY, copyCommand
 *   in db.c, but the sink's cross-slot COPY takes no DB option);
 * - SWAPDB a b where it lacks one of them: dropped (`SWAPDB`), and the db it has then
 *   differs from the source's; where it lacks both, `db <a>`; SWAPDB a a swaps nothing
 *   (dbSwapDatabases in db.c), dropped without a count. A cluster runs no SWAPDB ("not
 *   allowed in cluster mode", swapdbCommand), a server runs it (see DestinationWriter);
 * - FLUSHALL, PUBLISH, SPUBLISH, SCRIPT, FUNCTION act on no db of their own, whatever db was
 *   selected on the source: they go to db 0. MULTI, EXEC and DISCARD only mark transactions.
 */
export class DestinationDbs {
  constructor(
    /** How many dbs the destination has (Infinity: not known, every db taken to exist). */
    readonly count: number,
    readonly cluster: boolean,
  ) {}

  has(db: number): boolean {
    return db < this.count;
  }

  /** Whether `fit` may change or drop the operation (most need no look: a command of a db it has). */
  concerns(op: Operation): boolean {
    if (op.kind === 'key') return op.db >= this.count;
    return op.kind === 'command' && (op.db >= this.count || NAMES_A_DB.has(op.name));
  }

  /** A key or command as the destination runs it (null: nothing to run), and what was dropped of it. */
  fit(op: Operation): Fitted {
    if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end') return { op, dropped: null };
    if (op.kind === 'key') return this.has(op.db) ? { op, dropped: null } : { op: null, dropped: this.otherDb(op.db, `the snapshot key "${keyText(op.key)}"`) };
    if (NOT_IN_A_DB.has(op.name)) return { op: this.has(op.db) ? op : { ...op, db: 0 }, dropped: null };
    switch (op.name) {
      case 'MOVE':
        return this.move(op);
      case 'COPY':
        return this.copy(op);
      case 'SWAPDB':
        return this.swapdb(op);
      default:
        return this.has(op.db) ? { op, dropped: null } : { op: null, dropped: this.otherDb(op.db, describe(op)) };
    }
  }

  /** What the destination is, for messages. */
  private describe(): string {
    return this.cluster ? 'a cluster has db 0 only' : `the destination has ${this.count} dbs (databases ${this.count})`;
  }

  private otherDb(db: number, first: string): Dropped {
    return new Dropped(
      `db ${db}`,
      `the operations of db ${db} are dropped (the first: ${first}): ${this.describe()}. Map db ${db} into a db it has with a redis-op-filter (a remap, or every db to db 0 with a key prefix such as db{db}:) to keep them`,
    );
  }

  private move(op: CommandOp): Fitted {
    const target = dbArg(op.args[1]);
    if (target === null || (this.has(op.db) && this.has(target))) return { op, dropped: null };
    // the key leaves this db as it left the source's; where it arrives the destination has no db
    if (this.has(op.db)) return { op: { ...op, name: 'DEL', args: [op.args[0]], keys: [0] }, dropped: this.otherDb(target, describe(op)) };
    if (!this.has(target)) return { op: null, dropped: this.otherDb(op.db, describe(op)) };
    return {
      op: null,
      dropped: new Dropped('MOVE', `${describe(op)} moves a key into db ${target} from db ${op.db}, which the destination does not have (${this.describe()}): db ${target} lacks that key from now on`),
    };
  }

  private copy(op: CommandOp): Fitted {
    let at = -1;
    for (let i = 2; i < op.args.length - 1; i++) if (upperText(op.args[i]) === 'DB') at = i;
    const target = at < 0 ? op.db : dbArg(op.args[at + 1]);
    if (target === null) return { op, dropped: null };
    if (!this.has(op.db)) {
      if (!this.has(target) || target === op.db) return { op: null, dropped: this.otherDb(op.db, describe(op)) };
      return {
        op: null,
        dropped: new Dropped('COPY', `${describe(op)} copies a key into db ${target} from db ${op.db}, which the destination does not have (${this.describe()}): db ${target} lacks that copy`),
      };
    }
    if (!this.has(target)) return { op: null, dropped: this.otherDb(target, describe(op)) };
    if (this.cluster && at >= 0) return { op: { ...op, args: op.args.filter((_, i) => i !== at && i !== at + 1) }, dropped: null };
    return { op, dropped: null };
  }

  private swapdb(op: CommandOp): Fitted {
    const a = dbArg(op.args[0]);
    const b = dbArg(op.args[1]);
    if (a === null || b === null || (a !== b && this.has(a) && this.has(b))) return { op, dropped: null };
    if (a === b) return { op: null, dropped: null };
    if (!this.has(a) && !this.has(b)) return { op: null, dropped: this.otherDb(a, describe(op)) };
    const [held, lacked] = this.has(a) ? [a, b] : [b, a];
    return {
      op: null,
      dropped: new Dropped('SWAPDB', `${describe(op)} is dropped: the destination has db ${held} but not db ${lacked} (${this.describe()}), so db ${held} cannot take its keys: db ${held} differs from the source's from now on`),
    };
  }
}

export interface Fitted {
  op: Operation | null;
  dropped: Dropped | null;
}

/** What the sink dropped, under a label it counts by (stats.dropped), with what the user is told once. */
export class Dropped {
  constructor(
    readonly label: string,
    readonly why: string,
  ) {}
}

function describe(op: CommandOp): string {
  const key = op.keys.length > 0 ? ` of key "${keyText(op.args[op.keys[0]])}"` : ` ${op.args.map((a) => a.toString('latin1')).join(' ')}`;
  return `${op.name}${key} in db ${op.db} at source offset ${op.offset}`;
}

function keyText(key: Buffer | undefined): string {
  return (key ?? Buffer.alloc(0)).toString('latin1').slice(0, 80);
}

function upperText(b: Buffer): string {
  return b.toString('latin1').toUpperCase();
}

function dbArg(b: Buffer | undefined): number | null {
  return b !== undefined && /^\d{1,9}$/.test(b.toString('latin1')) ? Number(b.toString('latin1')) : null;
}
