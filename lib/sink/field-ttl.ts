import type { CommandArg } from '../resp/encoder';

/**
 * The commands of hash field expiration: Redis 7.4's, which set or remove field TTLs, and
 * 8.0's, which also read, set or delete fields. A master replicates HEXPIRE, HPEXPIRE and
 * HEXPIREAT as HPEXPIREAT, HGETEX as HPEXPIREAT or HPERSIST, HGETDEL as HDEL, HSETEX as
 * HSETEX with PXAT (and 8.x HINCRBYFLOAT as HSETEX KEEPTTL): t_hash.c; the others come as
 * they were written (from scripts, from other servers).
 */
const OF_7_4 = ['HEXPIRE', 'HPEXPIRE', 'HEXPIREAT', 'HPEXPIREAT', 'HPERSIST'];
export const FIELD_TTL_COMMANDS: readonly string[] = [...OF_7_4, 'HSETEX', 'HGETEX', 'HGETDEL'];
const IS_FIELD_TTL_COMMAND = new Set(FIELD_TTL_COMMANDS);

/** Which of FIELD_TTL_COMMANDS a server of this redis_version has, when it cannot be asked (COMMAND INFO). */
export function fieldTtlCommandsOf([major, minor]: readonly [number, number]): Set<string> {
  if (major >= 8) return new Set(FIELD_TTL_COMMANDS);
  if (major === 7 && minor >= 4) return new Set(OF_7_4);
  return new Set();
}

/** A field TTL option of HSETEX and HGETEX, and the 7.4 command that sets a TTL given that way. */
const TTL_COMMAND_OF: Record<string, string> = { EX: 'HEXPIRE', PX: 'HPEXPIRE', EXAT: 'HEXPIREAT', PXAT: 'HPEXPIREAT' };

/**
 * HSETEX … KEEPTTL where field TTLs exist but HSETEX does not (7.4): HSET removes a field's
 * TTL, so each field's is read first and set again.
 */
const HSET_KEEPTTL = `local key = KEYS[1]
for i = 1, #ARGV, 2 do
  local t = redis.call('HPEXPIRETIME', key, 'FIELDS', 1, ARGV[i])[1]
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  if t > 0 then redis.call('HPEXPIREAT', key, t, 'FIELDS', 1, ARGV[i]) end
end
return 1`;

export interface FieldTtlRewrite {
  /** What the destination runs instead (none: nothing it can hold changes). */
  commands: CommandArg[][];
  /** Fields whose TTL the destination cannot hold, as the snapshot counts them (TypedLimits). */
  droppedTtls: number;
}

/**
 * A hash-field-TTL command for a destination that lacks it (`known`: the ones it has): what
 * it does there as far as the destination can hold it, as the snapshot does with a hash's
 * field TTLs. Values stay (HSETEX becomes HSET, HGETDEL HDEL); a TTL goes in with the 7.4
 * command for it where the destination has that, and is dropped and counted where it has no
 * field TTLs at all, like a removal of one (HPERSIST), which leaves nothing to remove there.
 * While the sync runs the destination still loses such a field when the source does: the
 * source replicates the expiry as HDEL. Null: the command goes as it is (the destination has
 * it, it is none of these, or it has no FIELDS: malformed, for the destination to refuse).
 */
export function withoutFieldTtlCommand(name: string, args: readonly Buffer[], known: ReadonlySet<string>): FieldTtlRewrite | null {
  if (!IS_FIELD_TTL_COMMAND.has(name) || known.has(name)) return null;
  const at = args.findIndex((a, i) => i > 0 && a.length === 6 && a.toString('latin1').toUpperCase() === 'FIELDS');
  if (at < 0) return null;
  const key = args[0];
  const fields = args.slice(at + 2);
  // HSETEX's and HGETEX's options, before FIELDS: a TTL (option and value), KEEPTTL, PERSIST;
  // the conditions (FNX, FXX; Valkey's NX, XX) held on the source, which replicates only what it ran
  let ttl: { command: string; value: Buffer } | null = null;
  const flags = new Set<string>();
  for (let i = 1; i < at; i++) {
    const option = args[i].toString('latin1').toUpperCase();
    if (option in TTL_COMMAND_OF) ttl = { command: TTL_COMMAND_OF[option], value: args[++i] };
    else flags.add(option);
  }
  const withTtl = (names: readonly Buffer[], commands: CommandArg[][]): FieldTtlRewrite => {
    if (ttl === null) return { commands, droppedTtls: 0 };
    if (!known.has(ttl.command)) return { commands, droppedTtls: names.length };
    return { commands: [...commands, [ttl.command, key, ttl.value, 'FIELDS', names.length, ...names]], droppedTtls: 0 };
  };
  switch (name) {
    case 'HGETDEL':
      return { commands: [['HDEL', key, ...fields]], droppedTtls: 0 };
    case 'HSETEX': {
      if (flags.has('KEEPTTL') && known.has('HPEXPIREAT')) return { commands: [['EVAL', HSET_KEEPTTL, 1, key, ...fields]], droppedTtls: 0 };
      return withTtl(
        fields.filter((_, i) => i % 2 === 0),
        [['HSET', key, ...fields]],
      );
    }
    case 'HGETEX': {
      if (flags.has('PERSIST') && known.has('HPERSIST')) return { commands: [['HPERSIST', key, ...args.slice(at)]], droppedTtls: 0 };
      return withTtl(fields, []);
    }
    case 'HPERSIST':
      return { commands: [], droppedTtls: 0 };
    default:
      // HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT key <time> [NX | XX | GT | LT] FIELDS n field …
      return { commands: [], droppedTtls: fields.length };
  }
}
