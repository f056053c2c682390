import { describeFunction } from '../rdb';

/**
 * Function libraries are new in Redis 7.0: a destination before it has no FUNCTION and can
 * hold none, so the sink drops what a source replicates of them (FUNCTION LOAD, DELETE, FLUSH,
 * RESTORE, and the FUNCTION LOADs a full sync implies) and counts it, as it drops field TTLs
 * a destination cannot hold. Calls need no such care: a master never replicates FCALL or
 * FCALL_RO, only the writes the function made (script.c, scriptResetRun:
 * preventCommandPropagation), which any destination runs.
 */
export const FUNCTION = 'FUNCTION';

/** Whether a server of this redis_version has FUNCTION, when it cannot be asked (COMMAND INFO). */
export function hasFunctionsOf([major]: readonly [number, number]): boolean {
  return major >= 7;
}

/**
 * A FUNCTION command as the sink's user knows it: the library it loads (named in its
 * `#!lua name=…` header) or deletes; FLUSH and RESTORE concern every library.
 */
export function describeFunctionCommand(args: readonly Buffer[]): string {
  const sub = (args[0]?.toString('latin1') ?? '').toUpperCase();
  const last = args[args.length - 1];
  if (sub === 'LOAD' && last !== undefined) {
    const name = describeFunction(last.toString('utf8')).library_name;
    return name === '' ? 'FUNCTION LOAD (a library without a name)' : `FUNCTION LOAD of library "${name}"`;
  }
  if (sub === 'DELETE' && args.length > 1) return `FUNCTION DELETE of library "${args[1].toString('utf8')}"`;
  return `FUNCTION ${sub}`;
}
