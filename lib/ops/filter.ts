/**
 * The op filter: keeps or drops operations by command name, db and key, and remaps dbs
 * (the engine of the redis-op-filter node; no Node-RED here). Its settings are read and
 * checked in filter-config.ts, its key patterns matched in key-patterns.ts.
 *
 * It changes the operations it keeps IN PLACE (db, key prefixes, the arguments of a
 * command that keeps only some of its keys): this is the cheap way at 100k+ ops/s, and the
 * operation contract lets any stage of a flow change operations in place. A kept operation
 * is the same object it was; dropped operations go out as they came. New objects are made
 * only where one operation becomes two (the dropped part of a split command, the original
 * of a rewritten one). When apply() throws, operations before the failing one may already
 * have been changed.
 *
 * Decisions a filter has to make beyond "does this key match" are documented in the
 * node's help (nodes/redis-op-filter/redis-op-filter.html) and implemented here:
 * - Commands: a preset, plus an allow list, minus a deny list. The "all writes" preset
 *   keeps commands the command table does not know (newer commands, modules' commands),
 *   since a master only replicates what changes data. MULTI/EXEC/DISCARD follow the
 *   transaction rule (kept when any command of the transaction is kept) and FLUSHALL /
 *   FLUSHDB the flush policy, never the lists.
 * - Multi-key commands whose keys only partly match: see Rule in commands.ts and the
 *   methods below.
 * - dbs: MOVE, COPY … DB and SWAPDB name a second db, which the db filter and the remap
 *   apply to as well. PUBLISH, SPUBLISH, SCRIPT and FUNCTION are not bound to a db.
 */
import { SyncError } from '../errors';
import { COMMUNITY_COMMANDS, ENHANCED_COMMANDS } from './command-sets';
import { ALL_WRITE_COMMANDS, KNOWN_COMMANDS, leftBehind, Rule, ruleOf, sortOptions } from './commands';
import { dbNumber } from './db-list';
import { DB_TOKEN, validateFilterConfig, type FlushPolicy, type OpFilterConfig } from './filter-config';
import { KeyPatterns } from './key-patterns';
import type { CommandOp, KeyOp, Operation } from './operation';

export interface FilterResult {
  kept: Operation[];
  dropped: Operation[];
}

/** A flush met under the "error" flush policy: the sync must stop here. */
export class FilterError extends SyncError<'FLUSH'> {
  constructor(
    readonly command: string,
    readonly db: number,
    readonly offset: number,
    readonly shard: string,
  ) {
    super('FLUSH', `${command} in db ${db} at source offset ${offset} (shard ${shard}): the flush policy is "error", so the sync stops here`);
    this.name = 'FilterError';
  }
}

/** A MULTI forwarded (tentatively, until a command of its transaction is kept) and not yet closed. */
interface OpenTx {
  tx: number;
  multi: CommandOp;
  /** Its index in this batch's kept list; -1 once it went out with an earlier batch. */
  multiAt: number;
  /** Where it goes in the dropped list, should nothing of the transaction be kept. */
  droppedAt: number;
  kept: number;
  /** The db of the last kept command of the transaction, for its EXEC. */
  db: number;
}

function prefixed(prefix: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + key.length);
  prefix.copy(out, 0);
  key.copy(out, prefix.length);
  return out;
}

function keyText(key: Buffer): string {
  return key.toString('latin1').slice(0, 80);
}

function upper(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('latin1').toUpperCase();
}

function dbArg(b: Buffer | undefined): number | null {
  return b === undefined ? null : dbNumber(b.toString('latin1'));
}

const dbBuffer = (db: number): Buffer => Buffer.from(String(db));

export class OpFilter {
  /**
   * Operations kept and dropped so far (a split command counts in both); `lost`, by command
   * name, the commands dropped although they change what is kept, which then differs from the
   * source (see lose()).
   */
  readonly stats = { kept: 0, dropped: 0, lost: {} as Record<string, number> };
  /** Set once apply() threw: the filter stopped, and every later apply() throws it again. */
  failure: FilterError | null = null;

  private readonly allowAll: boolean;
  private readonly allow: ReadonlySet<string>;
  private readonly deny: ReadonlySet<string>;
  private readonly verdicts = new Map<string, boolean>();
  private readonly includeDbs: ReadonlySet<number> | null;
  private readonly excludeDbs: ReadonlySet<number>;
  private readonly dbFiltering: boolean;
  private readonly remap: ReadonlyMap<number, number>;
  private readonly allToZero: boolean;
  private readonly remapping: boolean;
  private readonly prefix: string | null;
  private readonly prefixPerDb: boolean;
  private readonly prefixes: Buffer[] = [];
  private readonly keys: KeyPatterns;
  private readonly keyFiltering: boolean;
  private readonly flush: FlushPolicy;
  private readonly openTx = new Map<string, OpenTx>();
  /** Per-key verdicts of the command being split, reused. */
  private scratch = new Uint8Array(64);
  private kept: Operation[] = [];
  private dropped: Operation[] = [];

  constructor(
    cfg: OpFilterConfig = {},
    /** Told the first time each command name is lost (see lose()), with what happened, so that no loss is silent. */
    private readonly onLost?: (command: string, why: string) => void,
  ) {
    const problems = validateFilterConfig(cfg);
    if (problems.length > 0) throw new Error(`op filter configuration: ${problems.join('; ')}`);
    const preset = cfg.preset ?? 'all';
    this.allowAll = preset === 'all';
    const presetNames = preset === 'community' ? COMMUNITY_COMMANDS : preset === 'enhanced' ? ENHANCED_COMMANDS : [];
    this.allow = new Set([...presetNames, ...(cfg.allow ?? []).map((n) => n.toUpperCase())]);
    this.deny = new Set((cfg.deny ?? []).map((n) => n.toUpperCase()));
    this.includeDbs = cfg.includeDbs && cfg.includeDbs.length > 0 ? new Set(cfg.includeDbs) : null;
    this.excludeDbs = new Set(cfg.excludeDbs ?? []);
    this.dbFiltering = this.includeDbs !== null || this.excludeDbs.size > 0;
    this.remap = new Map(Object.entries(cfg.remap ?? {}).map(([from, to]) => [Number(from), to]));
    this.allToZero = cfg.allDbsToZero === true;
    this.remapping = this.allToZero || this.remap.size > 0;
    this.prefix = cfg.keyPrefix ? cfg.keyPrefix : null;
    this.prefixPerDb = this.prefix !== null && this.prefix.includes(DB_TOKEN);
    this.keys = new KeyPatterns(cfg.includeKeys ?? [], cfg.excludeKeys ?? []);
    this.keyFiltering = this.keys.active;
    this.flush = cfg.flush ?? 'apply';
  }

  /** Sorts a batch into what is kept (changed in place where needed) and what is dropped, in order. */
  apply(ops: Operation[]): FilterResult {
    if (this.failure !== null) throw this.failure;
    const kept: Operation[] = [];
    const dropped: Operation[] = [];
    this.kept = kept;
    this.dropped = dropped;
    try {
      for (const op of ops) {
        if (op.kind === 'command') this.command(op);
        else if (op.kind !== 'key') kept.push(op); // snapshot-begin/-end: no db, no key
        else if (this.keyOp(op)) kept.push(op);
        else dropped.push(op);
      }
    } catch (err) {
      if (err instanceof FilterError) this.failure = err;
      throw err;
    }
    // a transaction that goes on in the next batch: its MULTI goes out with this one
    for (const t of this.openTx.values()) {
      if (t.multiAt >= 0 && t.kept === 0) t.multi.db = this.mapDb(t.multi.db);
      t.multiAt = -1;
    }
    this.stats.kept += kept.length;
    this.stats.dropped += dropped.length;
    return { kept, dropped };
  }

  /** Whether the command lists keep this name (MULTI/EXEC and the flushes aside). */
  commandAllowed(name: string): boolean {
    let verdict = this.verdicts.get(name);
    if (verdict === undefined) {
      verdict = !this.deny.has(name) && (this.allow.has(name) || (this.allowAll && (ALL_WRITE_COMMANDS.has(name) || !KNOWN_COMMANDS.has(name))));
      // names come from the stream: a garbage stream must not grow this without bound
      if (this.verdicts.size < 4096) this.verdicts.set(name, verdict);
    }
    return verdict;
  }

  /** Whether a key passes the key patterns. */
  keyKept(key: Buffer): boolean {
    return this.keys.passes(key);
  }

  private dbKept(db: number): boolean {
    return !this.dbFiltering || ((this.includeDbs === null || this.includeDbs.has(db)) && !this.excludeDbs.has(db));
  }

  private mapDb(db: number): number {
    if (!this.remapping) return db;
    return this.allToZero ? 0 : (this.remap.get(db) ?? db);
  }

  private prefixFor(db: number): Buffer {
    let p = this.prefixes[db];
    if (p === undefined) {
      p = Buffer.from((this.prefix as string).split(DB_TOKEN).join(String(db)), 'utf8');
      this.prefixes[db] = p;
    }
    return p;
  }

  private keyOp(op: KeyOp): boolean {
    if (!this.dbKept(op.db)) return false;
    if (this.keyFiltering && !this.keyKept(op.key)) return false;
    const db = op.db;
    op.db = this.mapDb(db);
    if (this.prefix !== null) {
      op.key = prefixed(this.prefixFor(db), op.key);
      if (op.slot !== undefined) op.slot = undefined;
    }
    return true;
  }

  private command(op: CommandOp): void {
    const rule = ruleOf(op.name);
    if (rule === Rule.MULTI) return this.multi(op);
    if (rule === Rule.EXEC) return this.exec(op);
    let keep: boolean;
    if (rule === Rule.FLUSHALL || rule === Rule.FLUSHDB) keep = this.flushCommand(op, rule);
    else keep = this.commandAllowed(op.name) && this.filterCommand(op, rule);
    if (!keep) {
      this.dropped.push(op);
      return;
    }
    this.kept.push(op);
    if (this.openTx.size > 0) this.keptInTx(op);
  }

  /** Db and key rules for a command the lists keep; true when (what is left of) it is kept. */
  private filterCommand(op: CommandOp, rule: Rule | undefined): boolean {
    switch (rule) {
      case Rule.KEYLESS_GLOBAL:
        op.db = this.mapDb(op.db);
        return true;
      case Rule.SWAPDB:
        return this.swapdb(op);
      default:
        break;
    }
    if (!this.dbKept(op.db)) {
      if (rule === Rule.MOVE_DB || rule === Rule.COPY) this.fromExcludedDb(op, rule);
      return false;
    }
    switch (rule) {
      case Rule.MOVE_DB:
        return this.moveDb(op);
      case Rule.COPY:
        return this.copy(op);
      case Rule.SORT:
        return this.sort(op);
      default:
        break;
    }
    const keys = op.keys;
    if (this.keyFiltering && keys.length > 0) {
      if (keys.length === 1) {
        if (!this.keyKept(op.args[keys[0]])) return false;
      } else if (!this.multiKey(op, rule)) {
        return false;
      }
    }
    this.finish(op);
    return true;
  }

  /** The remap and the prefix, on a kept command whose keys are op.keys. */
  private finish(op: CommandOp): void {
    const db = op.db;
    op.db = this.mapDb(db);
    if (this.prefix === null || op.keys.length === 0) return;
    const p = this.prefixFor(db);
    for (const i of op.keys) op.args[i] = prefixed(p, op.args[i]);
    if (op.slot !== undefined) op.slot = undefined;
  }

  private multiKey(op: CommandOp, rule: Rule | undefined): boolean {
    const { args, keys } = op;
    switch (rule) {
      case Rule.SPLIT:
        return this.split(op, 1);
      case Rule.SPLIT_PAIRS:
        return this.split(op, 2);
      case Rule.MOVE:
        return this.moveKeys(op);
      case Rule.STORE_FIRST:
        // the written key decides: the others are only read
        return this.keyKept(args[keys[0]]);
      case Rule.STORE_LAST:
        return this.keyKept(args[keys[keys.length - 1]]);
      default:
        // a script, or a command this filter has no rule for: kept whole when one key matches,
        // since dropping it would lose writes to kept keys
        for (const k of keys) if (this.keyKept(args[k])) return true;
        return false;
    }
  }

  /**
   * DEL, UNLINK, TOUCH, EXISTS (width 1) and MSET, MSETNX (width 2: key and value) keep the
   * keys that match. MSETNX keeps its name: a replicated MSETNX set all of its keys on the
   * source (a refused one is not replicated), so on a destination that matches the source
   * for the kept keys, the narrowed MSETNX sets them exactly as the source did.
   */
  private split(op: CommandOp, width: number): boolean {
    const { args, keys } = op;
    if (this.scratch.length < keys.length) this.scratch = new Uint8Array(keys.length * 2);
    const verdict = this.scratch;
    let count = 0;
    for (let j = 0; j < keys.length; j++) {
      verdict[j] = this.keyKept(args[keys[j]]) ? 1 : 0;
      count += verdict[j];
    }
    if (count === keys.length) return true;
    if (count === 0) return false;
    const keptArgs: Buffer[] = [];
    const keptKeys: number[] = [];
    const droppedArgs: Buffer[] = [];
    const droppedKeys: number[] = [];
    for (let j = 0; j < keys.length; j++) {
      const toArgs = verdict[j] === 1 ? keptArgs : droppedArgs;
      (verdict[j] === 1 ? keptKeys : droppedKeys).push(toArgs.length);
      for (let w = 0; w < width; w++) toArgs.push(args[keys[j] + w]);
    }
    this.dropped.push({ ...op, args: droppedArgs, keys: droppedKeys });
    op.args = keptArgs;
    op.keys = keptKeys;
    return true;
  }

  /**
   * RENAME, RENAMENX, SMOVE, LMOVE, BLMOVE, RPOPLPUSH, BRPOPLPUSH: data goes from the first
   * key to the second. Source kept, destination dropped: the kept key only loses what left
   * it, so the command becomes that removal (DEL, SREM, LPOP/RPOP) and the original goes
   * to the dropped output. Source dropped: what arrives in a kept destination is data the
   * destination server does not have, and running the command would write the dropped
   * key, so it is dropped (the destination key then differs from the source's).
   */
  private moveKeys(op: CommandOp): boolean {
    const { args, keys } = op;
    const src = args[keys[0]];
    if (!this.keyKept(src)) {
      if (this.keyKept(args[keys[1]])) this.lose(op, `it takes data from key "${keyText(src)}", which the key patterns drop, into key "${keyText(args[keys[1]])}", which they keep: that key lacks the data`);
      return false;
    }
    if (this.keyKept(args[keys[1]])) return true;
    this.dropped.push({ ...op });
    const left = leftBehind(op);
    this.rewrite(op, left.name, left.args);
    return true;
  }

  /** Turns a kept command into a one-key command on args[0]. */
  private rewrite(op: CommandOp, name: string, args: Buffer[]): void {
    op.name = name;
    op.args = args;
    op.keys = [0];
  }

  /**
   * SORT … STORE: the STORE key decides, as for the other store commands; with a key prefix,
   * BY and GET patterns (which name keys) get it too.
   */
  private sort(op: CommandOp): boolean {
    const { store, patterns } = sortOptions(op.args);
    if (this.keyFiltering && !this.keyKept(op.args[store >= 0 ? store : 0])) return false;
    if (this.prefix !== null) {
      const p = this.prefixFor(op.db);
      for (const i of patterns) op.args[i] = prefixed(p, op.args[i]);
    }
    this.finish(op);
    return true;
  }

  /**
   * MOVE key db. To an excluded db: on the kept dbs the key just disappears, so it becomes
   * DEL. To a db that lands in the same destination db (every db to 0, or a remap joining
   * them): with a {db} prefix it becomes a RENAME from one db's prefix to the other's,
   * else it changes nothing there and is dropped. Otherwise the db argument is remapped.
   */
  private moveDb(op: CommandOp): boolean {
    const key = op.args[0];
    if (key === undefined || (this.keyFiltering && !this.keyKept(key))) return false;
    const target = dbArg(op.args[1]);
    if (target === null) {
      this.finish(op);
      return true;
    }
    if (!this.dbKept(target)) {
      this.dropped.push({ ...op });
      this.rewrite(op, 'DEL', [key]);
      this.finish(op);
      return true;
    }
    const from = this.mapDb(op.db);
    const to = this.mapDb(target);
    if (from !== to) {
      this.finish(op);
      if (to !== target) op.args[1] = dbBuffer(to);
      return true;
    }
    if (!this.prefixPerDb || target === op.db) return false;
    this.dropped.push({ ...op });
    op.name = 'RENAME';
    op.args = [prefixed(this.prefixFor(op.db), key), prefixed(this.prefixFor(target), key)];
    op.keys = [0, 1];
    op.db = from;
    if (op.slot !== undefined) op.slot = undefined;
    return true;
  }

  /**
   * COPY source destination [DB n] [REPLACE]: a store command (the destination key decides).
   * With DB n, db n must be kept too; when it lands in the same destination db as the
   * source's, the DB option goes (each key with its own db's prefix), else n is remapped.
   */
  private copy(op: CommandOp): boolean {
    const { args } = op;
    let dbAt = -1;
    for (let i = 2; i < args.length - 1; i++) if (upper(args[i]) === 'DB') dbAt = i + 1;
    const target = dbAt < 0 ? op.db : dbArg(args[dbAt]);
    if (target === null || args.length < 2) {
      this.finish(op);
      return true;
    }
    if (!this.dbKept(target)) return false;
    if (this.keyFiltering && !this.keyKept(args[1])) return false;
    const from = this.mapDb(op.db);
    const to = this.mapDb(target);
    if (dbAt < 0 || from !== to) {
      this.finish(op);
      if (dbAt >= 0 && to !== target) op.args[dbAt] = dbBuffer(to);
      return true;
    }
    const rest = args.filter((_, i) => i > 1 && i !== dbAt - 1 && i !== dbAt);
    const src = this.prefix === null ? args[0] : prefixed(this.prefixFor(op.db), args[0]);
    const dst = this.prefix === null ? args[1] : prefixed(this.prefixFor(target), args[1]);
    op.args = [src, dst, ...rest];
    op.keys = [0, 1];
    op.db = from;
    if (op.slot !== undefined) op.slot = undefined;
    return true;
  }

  /**
   * SWAPDB a b is kept (remapped) when both dbs are kept and land in different destination
   * dbs. When only one is kept, or both land in one db, the swap cannot be reproduced (the
   * destination lacks the other db's data, or would need every key renamed): dropped, and
   * the destination then differs from the source.
   */
  private swapdb(op: CommandOp): boolean {
    const a = dbArg(op.args[0]);
    const b = dbArg(op.args[1]);
    if (a === null || b === null) return true;
    if (!this.dbKept(a) || !this.dbKept(b)) {
      if (this.dbKept(a) || this.dbKept(b)) {
        const [kept, out] = this.dbKept(a) ? [a, b] : [b, a];
        this.lose(op, `db ${out} is filtered out, so db ${kept} cannot take its keys: db ${kept} differs from the source's from now on`);
      }
      return false;
    }
    const ma = this.mapDb(a);
    const mb = this.mapDb(b);
    if (ma === mb) {
      // with one prefix per db the swap would rename every key of both dbs, which no command
      // does; without, the two share one keyspace, which the swap leaves as it is
      if (this.prefixPerDb && a !== b) this.lose(op, `dbs ${a} and ${b} both go into db ${ma}, told apart by their key prefixes: swapping them would rename every key of both, so they differ from the source's from now on`);
      return false;
    }
    if (ma !== a) op.args[0] = dbBuffer(ma);
    if (mb !== b) op.args[1] = dbBuffer(mb);
    op.db = this.mapDb(op.db);
    return true;
  }

  /**
   * MOVE or COPY … DB from an excluded db: dropped, as its db's keys are not on the
   * destination; when it writes a kept key of a kept db, that key is lost there.
   */
  private fromExcludedDb(op: CommandOp, rule: Rule): void {
    let target: number | null = null;
    let written = op.args[0];
    if (rule === Rule.MOVE_DB) target = dbArg(op.args[1]);
    else {
      written = op.args[1];
      for (let i = 2; i < op.args.length - 1; i++) if (upper(op.args[i]) === 'DB') target = dbArg(op.args[i + 1]);
    }
    if (target === null || written === undefined || !this.dbKept(target) || (this.keyFiltering && !this.keyKept(written))) return;
    this.lose(op, `it writes key "${keyText(written)}" of db ${target} from db ${op.db}, which is filtered out: that key lacks it`);
  }

  /**
   * A command dropped although it changes what the filter keeps, not because the lists, the
   * patterns or the flush policy dropped it but because what is kept cannot show its effect:
   * the destination then differs from the source. Counted by name, and said once per name.
   */
  private lose(op: CommandOp, why: string): void {
    const n = this.stats.lost[op.name] ?? 0;
    this.stats.lost[op.name] = n + 1;
    if (n === 0) this.onLost?.(op.name, `${op.name} in db ${op.db} at source offset ${op.offset} is dropped: ${why}`);
  }

  /** FLUSHDB of an excluded db is dropped whatever the policy; otherwise the policy decides. */
  private flushCommand(op: CommandOp, rule: Rule): boolean {
    if (rule === Rule.FLUSHDB && !this.dbKept(op.db)) return false;
    if (this.flush === 'drop') return false;
    if (this.flush === 'error') throw new FilterError(op.name, op.db, op.offset, op.shard);
    op.db = this.mapDb(op.db);
    return true;
  }

  /** MULTI is kept for now (unchanged, so that it can still be dropped as it came). */
  private multi(op: CommandOp): void {
    this.openTx.set(op.shard, { tx: op.tx, multi: op, multiAt: this.kept.length, droppedAt: this.dropped.length, kept: 0, db: op.db });
    this.kept.push(op);
  }

  private keptInTx(op: CommandOp): void {
    const t = this.openTx.get(op.shard);
    if (t === undefined || t.tx !== op.tx) return;
    // MULTI goes to the db of the first command kept: its own may be one the destination lacks
    if (t.kept === 0 && t.multiAt >= 0) t.multi.db = op.db;
    t.kept++;
    t.db = op.db;
  }

  /** EXEC (or DISCARD): kept with its MULTI when a command of the transaction is, else both dropped. */
  private exec(op: CommandOp): void {
    const t = this.openTx.get(op.shard);
    if (t === undefined || t.tx !== op.tx) {
      // its MULTI never came through this filter: alone it would be an error on the destination
      this.dropped.push(op);
      return;
    }
    this.openTx.delete(op.shard);
    if (t.kept > 0 || t.multiAt < 0) {
      op.db = t.kept > 0 ? t.db : this.mapDb(op.db);
      this.kept.push(op);
      return;
    }
    // (another shard's transaction closed in this batch may have moved it)
    this.kept.splice(this.kept[t.multiAt] === t.multi ? t.multiAt : this.kept.indexOf(t.multi), 1);
    this.dropped.splice(t.droppedAt, 0, t.multi);
    this.dropped.push(op);
  }
}
