/**
 * The command table: what every stage needs to know about individual commands, in one place.
 * @ioredis/commands (Redis's own COMMAND output: flags, key specs, subcommands) answers for
 * every command it knows; ROWS below adds what it does not say (argument-dependent keys it
 * misses, how a multi-key write splits or narrows, whether a replay is harmless, where a
 * keyless command runs, which dbs a command concerns). The decoder, the op filter, the slot
 * router, the cross-slot executor and the sink ask here. Supporting a new command is a row
 * here and a case in test/command-table.test.ts.
 */
import { exists, getKeyIndexes, hasFlag, list as knownCommands } from '@ioredis/commands';
import type { CommandOp } from './operation';

interface TableEntry {
  flags: string[];
  subcommands?: Record<string, TableEntry>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own table, for the subcommand flags its API does not expose
const table = require('@ioredis/commands/built/commands.json') as Record<string, TableEntry>;

/**
 * How the keys of a command relate, which decides how the op filter treats a command whose
 * keys only partly pass its key patterns (the filter's rules, documented in the node's help)
 * and how the cross-slot executor co-locates a store command (lib/cluster/colocate.ts):
 * - SPLIT: each key stands alone (DEL, UNLINK, TOUCH, EXISTS), or with its value right
 *   after it (MSET, MSETNX: SPLIT_PAIRS); the command keeps the matching keys.
 * - MOVE: the first key is read and changed, the second written (RENAME, SMOVE, LMOVE …).
 * - STORE_FIRST / STORE_LAST: one destination key is written, the others are only read.
 * - Any other multi-key command (EVAL, EVALSHA, FCALL: which declared keys a script
 *   writes is unknown) is kept whole when one of its keys matches.
 * SORT, MOVE (the command), COPY, SWAPDB, the keyless commands of no db (KEYLESS_GLOBAL),
 * the flushes and the transaction markers have rules of their own in the filter.
 */
export const enum Rule {
  SPLIT = 1,
  SPLIT_PAIRS,
  MOVE,
  STORE_FIRST,
  STORE_LAST,
  SORT,
  MOVE_DB,
  COPY,
  SWAPDB,
  KEYLESS_GLOBAL,
  FLUSHALL,
  FLUSHDB,
  MULTI,
  EXEC,
}

/** The part of a command with only the keys at `positions` (indexes into op.keys), for the slot router. */
export type Splitter = (op: CommandOp, positions: number[]) => CommandOp;

/** A command as the op filter rewrites a MOVE-rule command whose destination key it drops. */
export interface Rewrite {
  name: string;
  args: Buffer[];
}

interface Row {
  /** Key positions, for commands whose keys depend on arguments in a way @ioredis/commands does not read. */
  keys?: (args: Buffer[]) => number[];
  /** A master replicates it although the table does not flag it `write` (see ALL_WRITE_COMMANDS). */
  replicated?: true;
  filter?: Rule;
  /** For Rule.MOVE: what is left of it when only its source key is kept (the data leaves that key). */
  leaves?: (args: Buffer[]) => Rewrite;
  /** A list of independent one-key writes: how the slot router splits it across slots. */
  split?: Splitter;
  /** Applied twice in a row it leaves what it left once (see isReplaySafe). */
  replaySafe?: true | ((args: Buffer[]) => boolean);
  /**
   * Where a command runs beyond "in the slot of its keys": `tx-marker` (MULTI, EXEC,
   * DISCARD mark a transaction, whose members share `tx`: the router drops them, the sink
   * groups by `tx`), `every-master` (a keyless command that every master of a cluster must
   * run).
   */
  placement?: 'tx-marker' | 'every-master';
  /** `none`: acts on no db of its own (the selected db means nothing to it); `two`: names a second db. */
  db?: 'none' | 'two';
  /** Runs a script, whose body may touch keys it does not declare. */
  script?: true;
}

const word = (arg: Buffer | undefined): string => (arg === undefined ? '' : arg.toString('latin1').toUpperCase());
const hasWord = (args: Buffer[], w: string): boolean => args.some((a) => a.length === w.length && word(a) === w);

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
 * SORT's options: where it stores its result (an index into args, -1 without STORE), where
 * its GET options are (indexes of the GET words), and the indexes of its BY and GET
 * patterns (GET # is none). A pattern without `*` reads no key (sortCommandGeneric and
 * lookupKeyByPattern in sort.c: BY nosort, a fixed GET). The one reading of SORT's options.
 */
export function sortOptions(args: Buffer[]): { store: number; gets: number[]; patterns: number[] } {
  let store = -1;
  const gets: number[] = [];
  const patterns: number[] = [];
  for (let i = 1; i < args.length; i++) {
    const w = word(args[i]);
    if (w === 'BY' || w === 'GET') {
      if (w === 'GET') gets.push(i);
      if (i + 1 < args.length && !(w === 'GET' && args[i + 1].toString('latin1') === '#')) patterns.push(i + 1);
      i++;
    } else if (w === 'LIMIT') {
      i += 2;
    } else if (w === 'STORE') {
      if (i + 1 < args.length) store = i + 1;
      i++;
    }
  }
  return { store, gets, patterns };
}

/**
 * SORT's keys are the sorted key and the STORE key, as Redis's sortGetKeys (db.c) finds
 * them: BY and GET name patterns, not keys (@ioredis/commands lists them as keys, and
 * misses STORE when the arguments are Buffers).
 */
const sortKeys = (args: Buffer[]): number[] => {
  const { store } = sortOptions(args);
  return store >= 0 ? [0, store] : [0];
};

/**
 * MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH …] [KEYS key …]: the keys are
 * after KEYS when the key argument is empty (migrateGetKeys in db.c). @ioredis/commands
 * compares that argument with "" and so misses an empty Buffer.
 */
const migrateKeys = (args: Buffer[]): number[] => {
  if (args.length < 3) return [];
  if (args[2].length > 0) return [2];
  for (let i = 5; i < args.length; i++) {
    if (word(args[i]) === 'KEYS') return Array.from({ length: args.length - i - 1 }, (_, j) => i + 1 + j);
  }
  return [];
};

/** ZADD and GEOADD assign scores unless INCR turns them into an increment. */
const unlessIncr = (args: Buffer[]): boolean => !hasWord(args, 'INCR');

const ASSIGNMENT: Row = { replaySafe: true };

/**
 * The rows. Which commands are assignments (replaySafe), the sink's exactly-once rule:
 * after a restart it replays from the last position the source saved, and skips, per hash
 * slot, every operation at or below that slot's checkpoint. Checkpoints are written
 * (atomically, in MULTI … EXEC) only with groups that hold a command NOT replay-safe. What is
 * replayed above a checkpoint is then only ever a run of assignments followed by not-yet-
 * applied operations, and a run of assignments applied twice leaves every key, field, member
 * and TTL as the run's last write set it. Anything not marked (INCR, APPEND, RPUSH, LREM,
 * ZINCRBY, XADD, rank- or index-based commands, unknown future commands …) is guarded.
 *
 * What a master replicates although the table does not flag it `write` (`replicated`,
 * checked against the replication stream of a 7.0 master, and the older masters' habits):
 * PUBLISH and SPUBLISH (sent on to replicas), PFCOUNT (when it refreshes the cached
 * cardinality), MULTI/EXEC (transactions, and the effects of a script since 7.0),
 * EVAL/EVALSHA/FCALL (replicated verbatim by masters before 7.0 unless effects replication
 * is on), SCRIPT LOAD/FLUSH (before 7.0), SELECT (the decoder folds it into `db`), and
 * DISCARD for completeness. FUNCTION and XGROUP are containers whose write subcommands the
 * table flags.
 */
const ROWS: Record<string, Row> = {
  SET: ASSIGNMENT,
  SETEX: ASSIGNMENT,
  PSETEX: ASSIGNMENT,
  SETNX: ASSIGNMENT,
  GETSET: ASSIGNMENT,
  GETDEL: ASSIGNMENT,
  GETEX: ASSIGNMENT,
  EXPIRE: ASSIGNMENT,
  PEXPIRE: ASSIGNMENT,
  EXPIREAT: ASSIGNMENT,
  PEXPIREAT: ASSIGNMENT,
  PERSIST: ASSIGNMENT,
  HSET: ASSIGNMENT,
  HMSET: ASSIGNMENT,
  HSETNX: ASSIGNMENT,
  HDEL: ASSIGNMENT,
  HPEXPIREAT: ASSIGNMENT,
  HEXPIREAT: ASSIGNMENT,
  HPERSIST: ASSIGNMENT,
  SADD: ASSIGNMENT,
  SREM: ASSIGNMENT,
  ZREM: ASSIGNMENT,
  ZREMRANGEBYSCORE: ASSIGNMENT,
  ZREMRANGEBYLEX: ASSIGNMENT,
  SETBIT: ASSIGNMENT,
  PFADD: ASSIGNMENT,
  XACK: ASSIGNMENT,
  XSETID: ASSIGNMENT,
  ZADD: { replaySafe: unlessIncr },
  GEOADD: { replaySafe: unlessIncr },
  // RESTORE … REPLACE overwrites; without REPLACE a second run fails with BUSYKEY.
  RESTORE: { replaySafe: (args) => hasWord(args, 'REPLACE') },

  DEL: { filter: Rule.SPLIT, split: keysOnly, replaySafe: true },
  UNLINK: { filter: Rule.SPLIT, split: keysOnly, replaySafe: true },
  // TOUCH only updates access times (a master does not even replicate it) but costs nothing to keep apart
  TOUCH: { filter: Rule.SPLIT, split: keysOnly },
  // EXISTS reads and never reaches the stream; the filter narrows it all the same, the router leaves it whole
  EXISTS: { filter: Rule.SPLIT },
  MSET: { filter: Rule.SPLIT_PAIRS, split: (op, positions) => ({ ...op, args: pairs(op, positions), keys: positions.map((_, i) => 2 * i) }), replaySafe: true },
  /**
   * A master replicates MSETNX only when it set every key: when one exists it replies 0
   * and returns before anything changes, so nothing is propagated (t_string.c,
   * msetGenericCommand; checked against 7.0, where a failed MSETNX leaves the stream
   * untouched). A replicated MSETNX is therefore an MSET of all its pairs, and each part of a
   * split becomes a plain MSET: a part kept as MSETNX would silently do nothing on a
   * destination that holds one of its keys already (a part applied before a crash, or data
   * the source never had), leaving the destination different from the source. (The filter
   * keeps the name: on a destination that matches the source for the kept keys, the
   * narrowed MSETNX sets them exactly as the source did.)
   */
  MSETNX: {
    filter: Rule.SPLIT_PAIRS,
    split: (op, positions) => ({ ...op, name: 'MSET', args: pairs(op, positions), keys: positions.map((_, i) => 2 * i) }),
  },
  /**
   * MSETEX numkeys key value … [NX|XX] [EX|PX|EXAT|PXAT|KEEPTTL] (Redis 8.4): NX/XX are
   * all-or-nothing like MSETNX, so a replicated one set every key and the parts drop them;
   * the expiry options go to every part. (From the documented semantics: no 8.4 server here
   * to check how it is replicated.)
   */
  MSETEX: {
    split: (op, positions) => {
      const numkeys = Number(op.args[0]?.toString('latin1'));
      if (!Number.isInteger(numkeys) || numkeys < 1) throw new TypeError(`MSETEX at offset ${op.offset}: numkeys is not a positive number`);
      const options = op.args.slice(1 + 2 * numkeys).filter((a) => !ALL_OR_NOTHING.has(word(a)));
      return { ...op, args: [Buffer.from(String(positions.length)), ...pairs(op, positions), ...options], keys: positions.map((_, i) => 1 + 2 * i) };
    },
  },

  RENAME: { filter: Rule.MOVE, leaves: (args) => ({ name: 'DEL', args: [args[0]] }) },
  RENAMENX: { filter: Rule.MOVE, leaves: (args) => ({ name: 'DEL', args: [args[0]] }) },
  SMOVE: { filter: Rule.MOVE, leaves: (args) => ({ name: 'SREM', args: [args[0], args[2]] }) },
  LMOVE: { filter: Rule.MOVE, leaves: (args) => ({ name: word(args[2]) === 'LEFT' ? 'LPOP' : 'RPOP', args: [args[0]] }) },
  BLMOVE: { filter: Rule.MOVE, leaves: (args) => ({ name: word(args[2]) === 'LEFT' ? 'LPOP' : 'RPOP', args: [args[0]] }) },
  RPOPLPUSH: { filter: Rule.MOVE, leaves: (args) => ({ name: 'RPOP', args: [args[0]] }) },
  BRPOPLPUSH: { filter: Rule.MOVE, leaves: (args) => ({ name: 'RPOP', args: [args[0]] }) },

  SUNIONSTORE: { filter: Rule.STORE_FIRST },
  SINTERSTORE: { filter: Rule.STORE_FIRST },
  SDIFFSTORE: { filter: Rule.STORE_FIRST },
  ZUNIONSTORE: { filter: Rule.STORE_FIRST },
  ZINTERSTORE: { filter: Rule.STORE_FIRST },
  ZDIFFSTORE: { filter: Rule.STORE_FIRST },
  ZRANGESTORE: { filter: Rule.STORE_FIRST },
  BITOP: { filter: Rule.STORE_FIRST },
  PFMERGE: { filter: Rule.STORE_FIRST },
  GEOSEARCHSTORE: { filter: Rule.STORE_FIRST },
  // with both STORE and STOREDIST the last one counts, as it does for Redis
  GEORADIUS: { filter: Rule.STORE_LAST },
  GEORADIUSBYMEMBER: { filter: Rule.STORE_LAST },
  SORT: { keys: sortKeys, filter: Rule.SORT },
  SORT_RO: { keys: sortKeys },
  MIGRATE: { keys: migrateKeys },

  MOVE: { filter: Rule.MOVE_DB, db: 'two' },
  COPY: { filter: Rule.COPY, db: 'two' },
  SWAPDB: { filter: Rule.SWAPDB, db: 'two' },

  PUBLISH: { replicated: true, filter: Rule.KEYLESS_GLOBAL, db: 'none' },
  // Its shard channel is in `keys` (its key spec), so that a cluster destination gets it on
  // the channel's slot; to the filter it is no key (not matched, not prefixed).
  SPUBLISH: { replicated: true, filter: Rule.KEYLESS_GLOBAL, db: 'none' },
  SCRIPT: { replicated: true, filter: Rule.KEYLESS_GLOBAL, placement: 'every-master', db: 'none' },
  FUNCTION: { filter: Rule.KEYLESS_GLOBAL, placement: 'every-master', db: 'none' },
  FLUSHALL: { filter: Rule.FLUSHALL, placement: 'every-master', db: 'none' },
  FLUSHDB: { filter: Rule.FLUSHDB, placement: 'every-master' },
  MULTI: { replicated: true, filter: Rule.MULTI, placement: 'tx-marker', db: 'none' },
  EXEC: { replicated: true, filter: Rule.EXEC, placement: 'tx-marker', db: 'none' },
  DISCARD: { replicated: true, filter: Rule.EXEC, placement: 'tx-marker', db: 'none' },

  EVAL: { replicated: true, script: true },
  EVALSHA: { replicated: true, script: true },
  FCALL: { replicated: true, script: true },
  PFCOUNT: { replicated: true },
  SELECT: { replicated: true },
};

/** Every row with every field (undefined where it says nothing): one shape, so the per-operation reads stay cheap. */
const full = (r: Row): Required<Row> => ({
  keys: r.keys,
  replicated: r.replicated,
  filter: r.filter,
  leaves: r.leaves,
  split: r.split,
  replaySafe: r.replaySafe,
  placement: r.placement,
  db: r.db,
  script: r.script,
}) as Required<Row>;
const NO_ROW = full({});
const rows = new Map(Object.entries(ROWS).map(([name, row]) => [name, full(row)]));

function rowOf(name: string): Required<Row> {
  return rows.get(name) ?? NO_ROW;
}

/** A command name as the stream sent it, resolved once (see commandOf). */
export interface Command {
  /** Upper case, as operations carry it. */
  readonly name: string;
  /** Indexes into `args` (the arguments after the name) of the key names; a fresh array each call. */
  keysOf(args: Buffer[]): number[];
}

class ResolvedCommand implements Command {
  readonly name: string;
  private readonly lower: string;
  private readonly own: ((args: Buffer[]) => number[]) | undefined;
  private readonly known: boolean;
  /**
   * Key positions per argument count, for commands whose positions depend on nothing else
   * (no subcommands, no "movablekeys"): the table is then read once per command and count,
   * not once per command received. Null for the others.
   */
  private readonly byCount: Map<number, readonly number[]> | null;

  constructor(sent: string) {
    this.name = sent.toUpperCase();
    this.lower = sent.toLowerCase();
    this.own = rowOf(this.name).keys;
    this.known = exists(this.lower);
    const fixed = this.own === undefined && this.known && table[this.lower].subcommands === undefined && !hasFlag(this.lower, 'movablekeys');
    this.byCount = fixed ? new Map() : null;
  }

  keysOf(args: Buffer[]): number[] {
    // a copy: operations are the user's to change in place (operation.ts)
    const cached = this.byCount?.get(args.length);
    if (cached !== undefined) return cached.slice();
    if (this.own !== undefined) return this.own(args);
    // a command the table does not know (newer than it, a module's) gets none
    let keys: number[] = [];
    if (this.known) {
      try {
        keys = getKeyIndexes(this.lower, args);
      } catch {
        keys = [];
      }
    }
    if (this.byCount !== null && this.byCount.size < 64) this.byCount.set(args.length, keys.slice());
    return keys;
  }
}

/** Names seen, as sent (a master sends them as clients wrote them: any case). */
const resolved = new Map<string, ResolvedCommand>();
// names come from the stream: a garbage stream must not grow this without bound
const RESOLVED_LIMIT = 4096;

/** The command a name stands for, in any case; resolved once per name (the decoder's hot path). */
export function commandOf(sent: string): Command {
  let c = resolved.get(sent);
  if (c === undefined) {
    c = new ResolvedCommand(sent);
    if (resolved.size < RESOLVED_LIMIT) resolved.set(sent, c);
  }
  return c;
}

/** Indexes into `args` of the key names of a command (any case); none for one the table does not know. */
export function keysOf(name: string, args: Buffer[]): number[] {
  return commandOf(name).keysOf(args);
}

/**
 * Whether a replicated command may be applied twice in a row without changing the result
 * (an "assignment", see ROWS): the sink's exactly-once rule.
 */
export function isReplaySafe(name: string, args: Buffer[]): boolean {
  const safe = rowOf(name).replaySafe;
  return safe === true || (safe !== undefined && safe(args));
}

/** How the slot router splits a command whose keys span slots; undefined when it cannot be split. */
export function splitterOf(name: string): Splitter | undefined {
  return rowOf(name).split;
}

/** The rule of a command (see Rule); undefined: the general one. */
export function ruleOf(name: string): Rule | undefined {
  return rowOf(name).filter;
}

/** For a Rule.MOVE command whose destination key the filter drops: the command left on its source key. */
export function leftBehind(op: CommandOp): Rewrite {
  const leaves = rowOf(op.name).leaves;
  if (leaves === undefined) throw new TypeError(`${op.name} has no Rule.MOVE row`);
  return leaves(op.args);
}

/** Whether a command runs a script (EVAL, EVALSHA, FCALL). */
export function isScript(name: string): boolean {
  return rowOf(name).script === true;
}

const named = (test: (row: Row) => boolean): ReadonlySet<string> => new Set([...rows].filter(([, row]) => test(row)).map(([name]) => name));

/** Transaction markers: the sink groups a transaction's commands by their `tx` id instead. */
export const TX_MARKERS = named((r) => r.placement === 'tx-marker');
/** Keyless commands that every master of a cluster destination must run. */
export const TO_EVERY_MASTER = named((r) => r.placement === 'every-master');
/** Commands of no db of their own: the db the source had selected means nothing to them. */
export const NOT_IN_A_DB = named((r) => r.db === 'none');
/** Commands that name a second db. */
export const NAMES_A_DB = named((r) => r.db === 'two');
/** Names the op filter's command lists cannot govern: the transaction rule and the flush policy do. */
export const NOT_LISTABLE = named((r) => r.placement === 'tx-marker' || r.filter === Rule.FLUSHALL || r.filter === Rule.FLUSHDB);

/** Every command the table knows, upper case. */
export const KNOWN_COMMANDS: ReadonlySet<string> = new Set(knownCommands.map((c) => c.toUpperCase()));

function writes(name: string): boolean {
  if (hasFlag(name, 'write')) return true;
  const subs = table[name]?.subcommands;
  return subs !== undefined && Object.values(subs).some((s) => s.flags.includes('write'));
}

/**
 * Every write of the command table, plus what a master replicates unflagged: the op
 * filter's "all writes" preset. A command the table does not know (newer than it, or a
 * module's) is kept by that preset too; the filter decides that, not this set.
 */
export const ALL_WRITE_COMMANDS: ReadonlySet<string> = new Set([...knownCommands.filter(writes).map((c) => c.toUpperCase()), ...named((r) => r.replicated === true)]);
