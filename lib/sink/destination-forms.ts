import { decodeRawValue } from '../rdb';
import type { CommandOp } from '../ops/operation';
import type { CommandArg } from '../resp/encoder';
import { SinkError } from './errors';
import { dumpPayloadFor, restorableBy } from './restore';
import { typedCommands, type TypedLimits } from './typed';

/**
 * What a destination runs for a replicated command it cannot run as it came: the forms a
 * newer master replicates (what it propagates, not what its clients sent) that an older
 * destination refuses, each rewritten into what does the same there, as one command (the
 * original's own, or one EVAL) so that it stays atomic, goes in the group its original goes
 * in (a guarded group's MULTI … EXEC, see commands.ts) and is asked for again as one (ASK).
 * From the sources of Redis 6.2.16, 7.0.15, 7.2.6, 7.4.1 and 8.0-m01:
 *
 * - SET: SETEX, PSETEX and SET with EX, PX or EXAT go out as `SET key value PXAT <ms>`
 *   (setGenericCommand in t_string.c; 6.2 as `PX <ms>` for EX and PX), and from 7.2 a SET
 *   with PXAT goes as it came, NX, XX and GET included; otherwise SET goes without GET, its
 *   NX, XX and KEEPTTL kept, and INCRBYFLOAT goes as `SET key value KEEPTTL`
 *   (incrbyfloatCommand). PXAT, EXAT and GET came with 6.2, KEEPTTL with 6.0, NX with GET
 *   with 7.0: GET is left out (it only reads), PXAT becomes SET + PEXPIREAT in one script,
 *   and KEEPTTL before 6.0 a script that sets the TTL the key had (see EXPIRE_AT).
 * - PEXPIREAT key <ms> NX|XX|GT|LT: EXPIRE, PEXPIRE and EXPIREAT go out as PEXPIREAT with
 *   their conditions (7.0, expireGenericCommand in expire.c), which a master propagates only
 *   when they held; before 7.0 the TTL is set without them, as the source set it.
 * - LPOP/RPOP key <count> (6.2; LMPOP and BLMPOP go out as these too, mpopGenericCommand in
 *   t_list.c): LTRIM, which drops the same elements (ltrimCommand deletes the emptied key).
 * - LMOVE (6.2; BLMOVE goes out as LMOVE, lmoveGenericCommand): RPOPLPUSH for RIGHT LEFT,
 *   else a script popping and pushing.
 * - COPY (6.2, copyCommand in db.c): a script with DUMP and RESTORE that gives the copy the
 *   key's own expiry time; ZRANGESTORE and ZDIFFSTORE (6.2, zrangeResultFinalizeStore and
 *   zunionInterDiffGenericCommand in t_zset.c, go out as they came): scripts that store the
 *   same members with the same scores, or delete the destination key for an empty result.
 * - ZADD … GT|LT (6.2; GEOADD goes out as ZADD, whose CH, NX, XX a 5.0 has): a script that
 *   applies the rule per member (zsetAdd in t_zset.c).
 * - GEORADIUS[BYMEMBER] … STORE and GEOSEARCHSTORE go out as they came: units in capitals
 *   only from 7.0 (extractUnitOrReply), ANY, BYBOX and GEOSEARCHSTORE only from 6.2, and
 *   before 6.2 a missing source key does not delete the stored key (georadiusGeneric in
 *   geo.c). Units are written in small letters, GEOSEARCHSTORE … BYRADIUS becomes
 *   GEORADIUS[BYMEMBER] … STORE[DIST], in a script that deletes the stored key when the
 *   source key is missing; ANY and BYBOX have no form there (see cannot).
 * - Streams: XADD and XTRIM with `~` go out with `=` and the length or first id reached, and
 *   their LIMIT kept (xaddCommand, xtrimCommand in t_stream.c), which no destination takes
 *   from a client other than its master (streamParseAddOrTrimArgsOrReply): LIMIT is left
 *   out everywhere. NOMKSTREAM and MINID came with 6.2 (NOMKSTREAM is left out: the stream
 *   existed; MINID becomes a script trimming by length), ENTRIESREAD of XGROUP CREATE and
 *   SETID (which XREADGROUP and XCLAIM propagate, streamPropagateGroupID) and ENTRIESADDED,
 *   MAXDELETEDID of XSETID with 7.0 (left out: no such counters before 7.0), XGROUP
 *   CREATECONSUMER (XREADGROUP … NOACK, streamPropagateConsumerCreation) with 6.2 (an
 *   XREADGROUP of the consumer's own history, which creates it and changes nothing else).
 * - FLUSHALL, FLUSHDB SYNC and (6.2 replicates it, scriptCommand) SCRIPT FLUSH SYNC|ASYNC:
 *   the mode came with 6.2; the flush without it empties the same.
 * - SPUBLISH (7.0, propagated by a standalone master, spublishCommand in pubsub.c): dropped
 *   where it is missing, since no client there can have subscribed to a shard channel.
 * - RESTORE with a payload of a newer RDB version (restoreCommand in cluster.c, propagated
 *   with ABSTTL from 7.0): a stream re-encoded as the destination's own, else typed commands.
 *
 * Whole commands (PROBED_COMMANDS) are known by what the destination says (COMMAND INFO),
 * arguments by its version (COMMAND INFO does not tell them before 7.0).
 */

type Version = readonly [number, number];

export interface Destination {
  version: Version;
  rdbVersion: number;
  /** Which of PROBED_COMMANDS it has (COMMAND INFO, else probedCommandsOf). */
  commands: ReadonlySet<string>;
}

const OF_6_2 = ['LMOVE', 'COPY', 'ZRANGESTORE', 'ZDIFFSTORE', 'GEOSEARCHSTORE'];
/** Commands a master replicates as they came that a destination may lack as a whole. */
export const PROBED_COMMANDS: readonly string[] = [...OF_6_2, 'SPUBLISH'];

/** Which of PROBED_COMMANDS a server of this redis_version has, when it cannot be asked. */
export function probedCommandsOf(v: Version): Set<string> {
  const known = new Set<string>();
  if (atLeast(v, 6, 2)) for (const c of OF_6_2) known.add(c);
  if (atLeast(v, 7, 0)) known.add('SPUBLISH');
  return known;
}

type Command = Pick<CommandOp, 'name' | 'args' | 'db' | 'offset'>;

/**
 * What the destination runs for a command (see the file comment): null when it runs it as it
 * came, [] when it is dropped. Throws a SinkError for a command that has no form there.
 * `limits` counts the field TTLs of a RESTOREd hash written with typed commands.
 */
export function destinationForm(op: Command, dest: Destination, limits: TypedLimits): CommandArg[][] | null {
  const { args } = op;
  const older = (major: number, minor: number): boolean => !atLeast(dest.version, major, minor);
  switch (op.name) {
    case 'SET':
      return older(7, 0) ? set(args, dest.version) : null;
    case 'PEXPIREAT':
      return older(7, 0) && args.length > 2 ? [['PEXPIREAT', args[0], args[1]]] : null;
    case 'LPOP':
    case 'RPOP':
      return older(6, 2) && args.length === 2 ? [pop(op.name, args[0], BigInt(args[1].toString('latin1')))] : null;
    case 'LMOVE':
      return dest.commands.has('LMOVE') ? null : [lmove(args)];
    case 'COPY':
      return dest.commands.has('COPY') ? null : [copy(args)];
    case 'ZRANGESTORE':
      return dest.commands.has('ZRANGESTORE') ? null : [zrangestore(args)];
    case 'ZDIFFSTORE':
      return dest.commands.has('ZDIFFSTORE') ? null : [['EVAL', ZDIFFSTORE, Number(args[1].toString('latin1')) + 1, args[0], ...args.slice(2)]];
    case 'ZADD':
      return older(6, 2) ? zadd(args) : null;
    case 'GEORADIUS':
    case 'GEORADIUSBYMEMBER':
    case 'GEOSEARCHSTORE':
      return older(7, 0) ? geoStore(op, dest) : null;
    case 'XADD':
    case 'XTRIM':
      return trim(op.name, args, older(6, 2));
    case 'XGROUP':
      return xgroup(args, dest.version);
    case 'XSETID':
      return older(7, 0) && args.length > 2 ? [['XSETID', args[0], args[1]]] : null;
    case 'FLUSHALL':
    case 'FLUSHDB':
      return older(6, 2) && args.length > 0 && word(args[0]) === 'SYNC' ? [[op.name]] : null;
    case 'SCRIPT':
      return older(6, 2) && args.length > 1 && word(args[0]) === 'FLUSH' ? [['SCRIPT', 'FLUSH']] : null;
    case 'SPUBLISH':
      return dest.commands.has('SPUBLISH') ? null : [];
    case 'RESTORE':
      return restore(op, dest, limits);
    default:
      return null;
  }
}

function atLeast(v: Version, major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

function word(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}

/** A command that has no form on the destination: the sink stops, saying what it lacks. */
function cannot(op: Command, key: Buffer, dest: Destination, lacks: string): SinkError {
  const name = key.toString('latin1').slice(0, 80);
  return new SinkError('REPLY', `${op.name} on key "${name}" (db ${op.db}, source offset ${op.offset}) cannot be applied: the destination, Redis ${dest.version.join('.')}, ${lacks}`);
}

/**
 * The key's expiry time, exact to the millisecond (nil without one), where PEXPIRETIME (7.0)
 * is missing: PTTL is the expiry time less the time it is run at, so it is read between two
 * TIMEs of the same millisecond. Reading TIME makes the script non-deterministic: before 5.0
 * (and with lua-replicate-commands no) only effects replication lets it write after that.
 */
const EXPIRE_AT = `redis.replicate_commands()
local function expire_at(key)
  while true do
    local before = redis.call('TIME')
    local ttl = redis.call('PTTL', key)
    local after = redis.call('TIME')
    local ms = before[1] * 1000 + math.floor(before[2] / 1000)
    if ms == after[1] * 1000 + math.floor(after[2] / 1000) then
      if ttl < 0 then return nil end
      return ms + ttl
    end
  end
end
`;

/** SET key value [NX|XX] PXAT|EXAT t before 6.2: set, then the TTL as absolute time (ARGV[2] PEXPIREAT or EXPIREAT). */
const SET_AT = `if redis.call('SET', KEYS[1], ARGV[1], unpack(ARGV, 4)) then return redis.call(ARGV[2], KEYS[1], ARGV[3]) end`;

/** SET key value [XX] KEEPTTL before 6.0: a plain SET removes the TTL (setKey), which is set again. */
const SET_KEEPTTL = `${EXPIRE_AT}local at = expire_at(KEYS[1])
if not redis.call('SET', KEYS[1], ARGV[1], unpack(ARGV, 2)) then return false end
if at then redis.call('PEXPIREAT', KEYS[1], at) end
return 1`;

function set(args: readonly Buffer[], v: Version): CommandArg[][] | null {
  const [key, value] = args;
  const kept: Buffer[] = [];
  const conditions: Buffer[] = [];
  let at: { command: string; time: Buffer } | null = null;
  let keepTtl = false;
  let get = false;
  for (let i = 2; i < args.length; i++) {
    const option = word(args[i]);
    if (option === 'GET') {
      get = true;
      continue;
    }
    kept.push(args[i]);
    if (option === 'NX' || option === 'XX') conditions.push(args[i]);
    else if (option === 'KEEPTTL') keepTtl = true;
    else if (option === 'PXAT' || option === 'EXAT') at = { command: option === 'PXAT' ? 'PEXPIREAT' : 'EXPIREAT', time: args[i + 1] };
    if (option === 'EX' || option === 'PX' || option === 'PXAT' || option === 'EXAT') kept.push(args[++i]);
  }
  if (at !== null && !atLeast(v, 6, 2)) return [['EVAL', SET_AT, 1, key, value, at.command, at.time, ...conditions]];
  if (keepTtl && !atLeast(v, 6, 0)) {
    // NX: the key did not exist, so there is no TTL to keep
    const nx = conditions.some((c) => word(c) === 'NX');
    return nx ? [['SET', key, value, 'NX']] : [['EVAL', SET_KEEPTTL, 1, key, value, ...conditions]];
  }
  return get ? [['SET', key, value, ...kept]] : null;
}

/** LPOP/RPOP key count as LTRIM: the first `count` elements go (LPOP), or the last (RPOP). */
function pop(name: string, key: Buffer, count: bigint): CommandArg[] {
  return name === 'LPOP' ? ['LTRIM', key, count, -1] : ['LTRIM', key, 0, -(count + 1n)];
}

const LMOVE = `local v = redis.call(ARGV[1], KEYS[1])
if v then redis.call(ARGV[2], KEYS[2], v) end
return v`;

function lmove([source, destination, from, to]: readonly Buffer[]): CommandArg[] {
  const [f, t] = [word(from), word(to)];
  if (f === 'RIGHT' && t === 'LEFT') return ['RPOPLPUSH', source, destination];
  return ['EVAL', LMOVE, 2, source, destination, f === 'LEFT' ? 'LPOP' : 'RPOP', t === 'LEFT' ? 'LPUSH' : 'RPUSH'];
}

/** COPY src dst [DB n] [REPLACE]: ARGV[1] the db ('' for the same), ARGV[2] '1' for REPLACE. */
const COPY = `${EXPIRE_AT}local payload = redis.call('DUMP', KEYS[1])
if not payload then return 0 end
local at = expire_at(KEYS[1])
if ARGV[1] ~= '' then redis.call('SELECT', ARGV[1]) end
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('RESTORE', KEYS[2], 0, payload, 'REPLACE')
if at then redis.call('PEXPIREAT', KEYS[2], at) end
return 1`;

function copy(args: readonly Buffer[]): CommandArg[] {
  let db: Buffer | string = '';
  let replace = '';
  for (let i = 2; i < args.length; i++) {
    if (word(args[i]) === 'DB') db = args[++i];
    else replace = '1';
  }
  return ['EVAL', COPY, 2, args[0], args[1], db, replace];
}

/**
 * Stores member, score, member, score … as the sorted set `dst`, replacing it (as setKey
 * does), or deletes it when there is none; the scores as the server printed them (%.17g),
 * which ZADD reads back exactly.
 */
const STORE = `local function store(dst, flat)
  redis.call('DEL', dst)
  for i = 1, #flat, 1000 do
    local args = {}
    for j = i, math.min(i + 998, #flat), 2 do
      args[#args + 1] = flat[j + 1]
      args[#args + 1] = flat[j]
    end
    redis.call('ZADD', dst, unpack(args))
  end
  return #flat / 2
end
`;

/** ZRANGESTORE dst src …: ARGV[1] '1' when the range command (ARGV[2], its arguments after the key ARGV[3] …) gives scores. */
const ZRANGESTORE = `${STORE}local range = redis.call(ARGV[2], KEYS[2], unpack(ARGV, 3))
if ARGV[1] == '1' then return store(KEYS[1], range) end
local flat = {}
for _, m in ipairs(range) do
  flat[#flat + 1] = m
  flat[#flat + 1] = redis.call('ZSCORE', KEYS[2], m)
end
return store(KEYS[1], flat)`;

/**
 * ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] as the range
 * command of 5.0 that reads the same members: with REV and BYSCORE or BYLEX min is the high
 * end (zrangeGenericCommand swaps them), as ZREVRANGEBYSCORE and ZREVRANGEBYLEX take it.
 */
function zrangestore([dst, src, min, max, ...options]: readonly Buffer[]): CommandArg[] {
  let by = '';
  let rev = false;
  const limit: Buffer[] = [];
  for (let i = 0; i < options.length; i++) {
    const option = word(options[i]);
    if (option === 'BYSCORE' || option === 'BYLEX') by = option;
    else if (option === 'REV') rev = true;
    else if (option === 'LIMIT') limit.push(options[i], options[++i], options[++i]);
  }
  const read = by === 'BYLEX' ? (rev ? 'ZREVRANGEBYLEX' : 'ZRANGEBYLEX') : by === 'BYSCORE' ? (rev ? 'ZREVRANGEBYSCORE' : 'ZRANGEBYSCORE') : rev ? 'ZREVRANGE' : 'ZRANGE';
  const scores = by === 'BYLEX' ? [] : ['WITHSCORES'];
  return ['EVAL', ZRANGESTORE, 2, dst, src, scores.length > 0 ? '1' : '', read, min, max, ...scores, ...limit];
}

/**
 * ZDIFFSTORE dst numkeys key …: the members of the first key in none of the others, with the
 * first key's scores; sets count as members of score 1 (zuiNext in t_zset.c).
 */
const ZDIFFSTORE = `${STORE}local function kind(key) return redis.call('TYPE', key)['ok'] end
local function has(key, t, m)
  if t == 'zset' then return redis.call('ZSCORE', key, m) ~= false end
  return t == 'set' and redis.call('SISMEMBER', key, m) == 1
end
local flat = {}
local t = kind(KEYS[2])
if t == 'zset' then flat = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES') end
if t == 'set' then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    flat[#flat + 1] = m
    flat[#flat + 1] = '1'
  end
end
local others = {}
for i = 3, #KEYS do others[#others + 1] = { KEYS[i], kind(KEYS[i]) } end
local out = {}
for i = 1, #flat, 2 do
  local keep = true
  for _, o in ipairs(others) do
    if has(o[1], o[2], flat[i]) then keep = false break end
  end
  if keep then
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
  end
end
return store(KEYS[1], out)`;

/**
 * ZADD key [XX] GT|LT [CH] [INCR] score member …: ARGV[1] GT or LT, ARGV[2] 'XX', ARGV[3]
 * 'INCR', then the pairs. As zsetAdd: a new member is added (unless XX), an existing one
 * takes the score (its sum with INCR) only when it is greater (GT) or less (LT).
 */
const ZADD_GT_LT = `local key, rule, xx, incr = KEYS[1], ARGV[1], ARGV[2] == 'XX', ARGV[3] == 'INCR'
for i = 4, #ARGV, 2 do
  local score, member = ARGV[i], ARGV[i + 1]
  local current = redis.call('ZSCORE', key, member)
  if not current then
    if not xx then redis.call('ZADD', key, score, member) end
  else
    local old, new = tonumber(current), tonumber(score)
    if incr then new = old + new end
    if (rule == 'GT' and new > old) or (rule == 'LT' and new < old) then
      redis.call(incr and 'ZINCRBY' or 'ZADD', key, score, member)
    end
  end
end
return 1`;

function zadd([key, ...rest]: readonly Buffer[]): CommandArg[][] | null {
  const flags = new Set<string>();
  let i = 0;
  for (; i < rest.length; i++) {
    const option = word(rest[i]);
    if (!['NX', 'XX', 'GT', 'LT', 'CH', 'INCR'].includes(option)) break;
    flags.add(option);
  }
  if (!flags.has('GT') && !flags.has('LT')) return null;
  return [['EVAL', ZADD_GT_LT, 1, key, flags.has('GT') ? 'GT' : 'LT', flags.has('XX') ? 'XX' : '', flags.has('INCR') ? 'INCR' : '', ...rest.slice(i)]];
}

/** A GEO store before 6.2: KEYS[1] the source key, KEYS[2] the stored key; ARGV the command and its arguments after the source key. */
const GEO_STORE = `if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('DEL', KEYS[2]) end
return redis.call(ARGV[1], KEYS[1], unpack(ARGV, 2))`;

/** Arguments each option of GEORADIUS[BYMEMBER] (after the unit) and GEOSEARCHSTORE takes. */
const GEO_OPTIONS: Record<string, number> = { WITHCOORD: 0, WITHDIST: 0, WITHHASH: 0, ASC: 0, DESC: 0, ANY: 0, STOREDIST: 0, COUNT: 1, STORE: 1, FROMMEMBER: 1, FROMLONLAT: 2, BYRADIUS: 2, BYBOX: 3 };

/** A GEO command that stores its result, for a destination before 7.0 (see the file comment). */
function geoStore(op: Command, dest: Destination): CommandArg[][] | null {
  const args = op.args.slice();
  const search = op.name === 'GEOSEARCHSTORE';
  // GEORADIUS key lon lat radius unit …, GEORADIUSBYMEMBER key member radius unit …, GEOSEARCHSTORE dst src …
  const first = search ? 2 : op.name === 'GEORADIUS' ? 5 : 4;
  const where: Record<string, number> = {};
  let unitAt = search ? -1 : first - 1;
  for (let i = first; i < args.length; i++) {
    const option = word(args[i]);
    where[option] = i;
    if (option === 'BYRADIUS') unitAt = i + 2;
    if (option === 'BYBOX') unitAt = i + 3;
    i += GEO_OPTIONS[option] ?? 0;
  }
  let lowered = false;
  if (unitAt >= 0 && args[unitAt].toString('latin1') !== args[unitAt].toString('latin1').toLowerCase()) {
    args[unitAt] = Buffer.from(args[unitAt].toString('latin1').toLowerCase(), 'latin1');
    lowered = true;
  }
  if (atLeast(dest.version, 6, 2) || (search && dest.commands.has('GEOSEARCHSTORE'))) return lowered ? [[op.name, ...args]] : null;
  const stored = search ? args[0] : args[Math.max(where.STORE ?? -1, where.STOREDIST ?? -1) + 1];
  if ('ANY' in where) throw cannot(op, stored, dest, 'has no COUNT … ANY (6.2), which stores the first members found rather than the nearest');
  if (!search) return [['EVAL', GEO_STORE, 2, args[0], stored, op.name, ...args.slice(1)]];
  if ('BYBOX' in where) throw cannot(op, stored, dest, 'has no GEOSEARCHSTORE (6.2), and GEORADIUS, the search it has, cannot search a box (BYBOX)');
  // GEOSEARCHSTORE dst src FROMMEMBER m | FROMLONLAT lon lat BYRADIUS r unit [ASC|DESC] [COUNT n] [STOREDIST]
  const src = args[1];
  const center = 'FROMMEMBER' in where ? ['GEORADIUSBYMEMBER', args[where.FROMMEMBER + 1]] : ['GEORADIUS', args[where.FROMLONLAT + 1], args[where.FROMLONLAT + 2]];
  const radius = args.slice(where.BYRADIUS + 1, where.BYRADIUS + 3);
  const order = 'ASC' in where ? ['ASC'] : 'DESC' in where ? ['DESC'] : [];
  const count = 'COUNT' in where ? ['COUNT', args[where.COUNT + 1]] : [];
  return [['EVAL', GEO_STORE, 2, src, stored, ...center, ...radius, ...order, ...count, 'STOREDIST' in where ? 'STOREDIST' : 'STORE', stored]];
}

/**
 * XTRIM … MINID before 6.2: the entries below the MINID (ARGV[1], the id just below it) are
 * the oldest, so trimming them is trimming the stream to the length of the others (MAXLEN,
 * exact). ARGV[2] … the arguments of the XADD to run first, if any.
 */
const TRIM_BY_MINID = `local added
if #ARGV > 1 then added = redis.call('XADD', KEYS[1], unpack(ARGV, 2)) end
local below, from, seen = 0, '-', 0
while true do
  local page = redis.call('XRANGE', KEYS[1], from, ARGV[1], 'COUNT', 1000)
  below = below + #page - seen
  if #page < 1000 then break end
  from, seen = page[#page][1], 1
end
if below > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', redis.call('XLEN', KEYS[1]) - below) end
return added or below`;

/** XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] id field value … and XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT n]. */
function trim(name: string, args: readonly Buffer[], before62: boolean): CommandArg[][] | null {
  const [key] = args;
  const kept: Buffer[] = [];
  let minid: Buffer | null = null;
  let changed = false;
  let i = 1;
  for (; i < args.length; i++) {
    const option = word(args[i]);
    if (option === 'LIMIT' || (option === 'NOMKSTREAM' && before62)) {
      changed = true;
      if (option === 'LIMIT') i++;
    } else if (option === 'MAXLEN' || option === 'MINID') {
      const n = word(args[i + 1]) === '=' || word(args[i + 1]) === '~' ? 2 : 1;
      if (option === 'MINID' && before62) {
        minid = args[i + n];
        changed = true;
      } else kept.push(...args.slice(i, i + n + 1));
      i += n;
    } else if (option !== 'NOMKSTREAM') break;
    else kept.push(args[i]);
  }
  if (!changed) return null;
  const rest = args.slice(i);
  if (minid === null) return [[name, key, ...kept, ...rest]];
  const below = idBelow(minid.toString('latin1'));
  if (below === null) return name === 'XADD' ? [['XADD', key, ...kept, ...rest]] : [];
  return [['EVAL', TRIM_BY_MINID, 1, key, below, ...(name === 'XADD' ? [...kept, ...rest] : [])]];
}

/** The greatest stream id below `id` (`ms` or `ms-seq`, or `-` and `+`, as MINID takes them); null when none is. */
function idBelow(id: string): string | null {
  if (id === '-') return null;
  if (id === '+') return '+';
  const [ms, seq = '0'] = id.split('-');
  const [m, s] = [BigInt(ms), BigInt(seq)];
  if (s > 0n) return `${m}-${s - 1n}`;
  return m > 0n ? `${m - 1n}-18446744073709551615` : null;
}

/** XGROUP CREATE|SETID … ENTRIESREAD n before 7.0, XGROUP CREATECONSUMER before 6.2. */
function xgroup(args: readonly Buffer[], v: Version): CommandArg[][] | null {
  const sub = word(args[0]);
  if (sub === 'CREATECONSUMER' && !atLeast(v, 6, 2)) {
    const [, key, group, consumer] = args;
    // with an id other than ">" XREADGROUP reads the consumer's pending entries, after creating it (xreadCommand)
    return [['XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', key, '0']];
  }
  if ((sub !== 'CREATE' && sub !== 'SETID') || atLeast(v, 7, 0)) return null;
  const at = args.findIndex((a, i) => i > 3 && word(a) === 'ENTRIESREAD');
  return at < 0 ? null : [['XGROUP', ...args.slice(0, at), ...args.slice(at + 2)]];
}

/**
 * RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] with a payload newer than
 * the destination reads (verifyDumpPayload refuses it): a stream re-encoded for it, anything
 * else written with typed commands (replacing the key, as the master only replicates a
 * RESTORE that replaced or created it; the eviction hints go, as for the snapshot's keys).
 */
function restore(op: Command, dest: Destination, limits: TypedLimits): CommandArg[][] | null {
  const [key, ttl, payload, ...options] = op.args;
  if (payload === undefined || payload.length < 11) return null;
  const rdbVersion = payload.readUInt16LE(payload.length - 10);
  if (rdbVersion <= dest.rdbVersion) return null;
  const value = { rdbType: payload[0], raw: payload.subarray(1, payload.length - 10), rdbVersion };
  if (restorableBy(value, dest.rdbVersion)) return [['RESTORE', key, ttl, dumpPayloadFor(value, dest.rdbVersion), ...options]];
  const ms = Number(ttl.toString('latin1'));
  const absolute = options.some((o) => word(o) === 'ABSTTL');
  const decoded = decodeRawValue(value.rdbType, value.raw, rdbVersion);
  if (decoded.type === 'module') throw cannot(op, key, dest, `cannot read its RDB version ${rdbVersion} payload, and a module value (${decoded.value.moduleName}) can only be written by RESTORE`);
  const commands = typedCommands(key, decoded, { first: true, last: true, expireMs: ms > 0 && absolute ? ms : null }, { version: [dest.version[0], dest.version[1]] }, limits);
  if (ms > 0 && !absolute) commands.push(['PEXPIRE', key, ms]);
  return commands;
}
