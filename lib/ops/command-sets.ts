/**
 * The command sets the op filter's presets stand for, and what it needs to know about how
 * the keys of a multi-key write relate (see lib/ops/filter.ts).
 */
import { list as knownCommands, hasFlag } from '@ioredis/commands';

/**
 * The operations Alibaba Cloud's Data Transmission Service (DTS) synchronizes from a Redis
 * Community Edition source, verbatim from its guide: SWAPDB and UNLINK only for a 4.0 source
 * there.
 */
export const COMMUNITY_COMMANDS: readonly string[] = [
  'APPEND', 'BITOP', 'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'DECR', 'DECRBY', 'DEL', 'EVAL', 'EVALSHA', 'EXEC', 'EXPIRE',
  'EXPIREAT', 'GEOADD', 'GETSET', 'HDEL', 'HINCRBY', 'HINCRBYFLOAT', 'HMSET', 'HSET', 'HSETNX', 'INCR', 'INCRBY',
  'INCRBYFLOAT', 'LINSERT', 'LPOP', 'LPUSH', 'LPUSHX', 'LREM', 'LSET', 'LTRIM', 'MOVE', 'MSET', 'MSETNX', 'MULTI',
  'PERSIST', 'PEXPIRE', 'PEXPIREAT', 'PFADD', 'PFMERGE', 'PSETEX', 'PUBLISH', 'RENAME', 'RENAMENX', 'RESTORE', 'RPOP',
  'RPOPLPUSH', 'RPUSH', 'RPUSHX', 'SADD', 'SDIFFSTORE', 'SELECT', 'SET', 'SETBIT', 'SETEX', 'SETNX', 'SETRANGE',
  'SINTERSTORE', 'SMOVE', 'SPOP', 'SREM', 'SUNIONSTORE', 'ZADD', 'ZINCRBY', 'ZINTERSTORE', 'ZREM', 'ZREMRANGEBYLEX',
  'ZUNIONSTORE', 'ZREMRANGEBYRANK', 'ZREMRANGEBYSCORE', 'SWAPDB', 'UNLINK',
];

/** The DTS list for an Enhanced Edition (Tair) source: the Community list without RESTORE and SWAPDB. */
export const ENHANCED_COMMANDS: readonly string[] = COMMUNITY_COMMANDS.filter((c) => c !== 'RESTORE' && c !== 'SWAPDB');

/**
 * What a master replicates although the command table does not flag it `write` (checked
 * against the replication stream of a 7.0 master, and the older masters' habits):
 * PUBLISH and SPUBLISH (sent on to replicas), PFCOUNT (when it refreshes the cached
 * cardinality), MULTI/EXEC (transactions, and the effects of a script since 7.0),
 * EVAL/EVALSHA/FCALL (replicated verbatim by masters before 7.0 unless effects
 * replication is on), SCRIPT LOAD/FLUSH (before 7.0), SELECT (the decoder folds it into
 * `db`), and DISCARD for completeness. FUNCTION and XGROUP are containers whose write
 * subcommands the table flags; they are found below.
 */
const REPLICATED_UNFLAGGED = ['PUBLISH', 'SPUBLISH', 'PFCOUNT', 'MULTI', 'EXEC', 'DISCARD', 'EVAL', 'EVALSHA', 'FCALL', 'SCRIPT', 'SELECT'];

interface TableEntry {
  flags: string[];
  subcommands?: Record<string, TableEntry>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own table, for the subcommand flags its API does not expose
const table = require('@ioredis/commands/built/commands.json') as Record<string, TableEntry>;

function writes(name: string): boolean {
  if (hasFlag(name, 'write')) return true;
  const subs = table[name]?.subcommands;
  return subs !== undefined && Object.values(subs).some((s) => s.flags.includes('write'));
}

/** Every command the table knows, upper case. */
export const KNOWN_COMMANDS: ReadonlySet<string> = new Set(knownCommands.map((c) => c.toUpperCase()));

/**
 * The "all writes" preset: every write of the command table, plus what a master replicates
 * unflagged. A command the table does not know (newer than it, or a module's) is kept by
 * that preset too; the filter decides that, not this set.
 */
export const ALL_WRITE_COMMANDS: ReadonlySet<string> = new Set([
  ...knownCommands.filter(writes).map((c) => c.toUpperCase()),
  ...REPLICATED_UNFLAGGED,
]);

/**
 * How the keys of a command are treated when only some of them pass the key patterns
 * (the filter's rules, documented in the node's help):
 * - SPLIT: each key stands alone (DEL, UNLINK, TOUCH, EXISTS), or with its value right
 *   after it (MSET, MSETNX: SPLIT_PAIRS); the command keeps the matching keys.
 * - MOVE: the first key is read and changed, the second written (RENAME, SMOVE, LMOVE …).
 * - STORE_FIRST / STORE_LAST: one destination key is written, the others are only read.
 * - Any other multi-key command (EVAL, EVALSHA, FCALL: which declared keys a script
 *   writes is unknown) is kept whole when one of its keys matches.
 * SORT, MOVE (the command), COPY, SWAPDB, SPUBLISH, the flushes and the transaction
 * markers have rules of their own in the filter.
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

export const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ['DEL', Rule.SPLIT],
  ['UNLINK', Rule.SPLIT],
  ['TOUCH', Rule.SPLIT],
  ['EXISTS', Rule.SPLIT],
  ['MSET', Rule.SPLIT_PAIRS],
  ['MSETNX', Rule.SPLIT_PAIRS],
  ['RENAME', Rule.MOVE],
  ['RENAMENX', Rule.MOVE],
  ['SMOVE', Rule.MOVE],
  ['LMOVE', Rule.MOVE],
  ['BLMOVE', Rule.MOVE],
  ['RPOPLPUSH', Rule.MOVE],
  ['BRPOPLPUSH', Rule.MOVE],
  ['SUNIONSTORE', Rule.STORE_FIRST],
  ['SINTERSTORE', Rule.STORE_FIRST],
  ['SDIFFSTORE', Rule.STORE_FIRST],
  ['ZUNIONSTORE', Rule.STORE_FIRST],
  ['ZINTERSTORE', Rule.STORE_FIRST],
  ['ZDIFFSTORE', Rule.STORE_FIRST],
  ['ZRANGESTORE', Rule.STORE_FIRST],
  ['BITOP', Rule.STORE_FIRST],
  ['PFMERGE', Rule.STORE_FIRST],
  ['GEOSEARCHSTORE', Rule.STORE_FIRST],
  ['GEORADIUS', Rule.STORE_LAST],
  ['GEORADIUSBYMEMBER', Rule.STORE_LAST],
  ['SORT', Rule.SORT],
  ['MOVE', Rule.MOVE_DB],
  ['COPY', Rule.COPY],
  ['SWAPDB', Rule.SWAPDB],
  // not bound to a db, and without keys: SPUBLISH's shard channel is no key, whatever its key spec says
  ['PUBLISH', Rule.KEYLESS_GLOBAL],
  ['SPUBLISH', Rule.KEYLESS_GLOBAL],
  ['SCRIPT', Rule.KEYLESS_GLOBAL],
  ['FUNCTION', Rule.KEYLESS_GLOBAL],
  ['FLUSHALL', Rule.FLUSHALL],
  ['FLUSHDB', Rule.FLUSHDB],
  ['MULTI', Rule.MULTI],
  ['EXEC', Rule.EXEC],
  ['DISCARD', Rule.EXEC],
]);

/** Names the command lists cannot govern: the transaction rule and the flush policy do. */
export const NOT_LISTABLE: ReadonlySet<string> = new Set(['MULTI', 'EXEC', 'DISCARD', 'FLUSHALL', 'FLUSHDB']);
