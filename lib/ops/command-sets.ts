/**
 * The command lists of the op filter's DTS presets (the "all writes" preset is
 * ALL_WRITE_COMMANDS of the command table, commands.ts).
 */

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
