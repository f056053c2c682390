/**
 * Which replicated commands may be applied twice in a row without changing the result.
 *
 * The sink's exactly-once rule: after a restart it replays from the last position the
 * source saved, and skips, per hash slot, every operation at or below that slot's
 * checkpoint. Checkpoints are written (atomically, in MULTI … EXEC) only with groups that
 * hold a command NOT in this set. What is replayed above a checkpoint is then only ever a
 * run of these "assignments" followed by not-yet-applied operations, and a run of
 * assignments applied twice leaves every key, field, member and TTL as the run's last write
 * set it. Anything not listed (INCR, APPEND, RPUSH, LREM, ZINCRBY, XADD, rank- or
 * index-based commands, unknown future commands …) is guarded.
 */
const ASSIGNMENTS = new Set([
  'SET',
  'SETEX',
  'PSETEX',
  'SETNX',
  'MSET',
  'GETSET',
  'GETDEL',
  'GETEX',
  'DEL',
  'UNLINK',
  'EXPIRE',
  'PEXPIRE',
  'EXPIREAT',
  'PEXPIREAT',
  'PERSIST',
  'HSET',
  'HMSET',
  'HSETNX',
  'HDEL',
  'HPEXPIREAT',
  'HEXPIREAT',
  'HPERSIST',
  'SADD',
  'SREM',
  'ZREM',
  'ZREMRANGEBYSCORE',
  'ZREMRANGEBYLEX',
  'SETBIT',
  'PFADD',
  'XACK',
  'XSETID',
]);

/** ZADD and GEOADD assign scores unless INCR turns them into an increment. */
const UNLESS_INCR = new Set(['ZADD', 'GEOADD']);

export function isReplaySafe(name: string, args: Buffer[]): boolean {
  if (ASSIGNMENTS.has(name)) return true;
  if (UNLESS_INCR.has(name)) return !args.some((a) => a.length === 4 && a.toString('latin1').toUpperCase() === 'INCR');
  // RESTORE … REPLACE overwrites; without REPLACE a second run fails with BUSYKEY.
  if (name === 'RESTORE') return args.some((a) => a.length === 7 && a.toString('latin1').toUpperCase() === 'REPLACE');
  return false;
}

/** Keyless commands that every master of a cluster destination must run. */
export const TO_EVERY_MASTER = new Set(['FLUSHALL', 'FLUSHDB', 'SCRIPT', 'FUNCTION']);

/** Transaction markers: the sink groups a transaction's commands by their `tx` id instead. */
export const TX_MARKERS = new Set(['MULTI', 'EXEC', 'DISCARD']);
