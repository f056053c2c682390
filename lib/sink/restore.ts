import { downgradeStream, DumpPayload, isStreamType, streamTypeOfRdb } from '../rdb';
import type { BulkWriter, CommandArg } from '../resp/encoder';

/** A snapshot key's serialized value as the source wrote it. */
export interface SourceValue {
  rdbType: number;
  raw: Buffer;
  rdbVersion: number;
}

/**
 * Whether a destination that reads RDB up to `destRdb` can RESTORE the value: one of its own
 * RDB version or older (verifyDumpPayload in cluster.c refuses a newer one), or a stream of a
 * newer version, which dumpPayloadFor re-encodes for it.
 */
export function restorableBy(v: Omit<SourceValue, 'raw'>, destRdb: number): boolean {
  return v.rdbVersion <= destRdb || (isStreamType(v.rdbType) && streamTypeOfRdb(destRdb) !== null);
}

/**
 * The DUMP payload of a value for a destination that reads RDB up to `destRdb` (see
 * restorableBy): the value as it is, or a newer stream re-encoded as the destination's own
 * stream type (downgradeStream), which keeps its whole PEL where typed commands could not.
 */
export function dumpPayloadFor(v: SourceValue, destRdb: number): DumpPayload {
  if (v.rdbVersion <= destRdb) return new DumpPayload(v.rdbType, v.raw, v.rdbVersion);
  const type = streamTypeOfRdb(destRdb);
  if (type === null || !isStreamType(v.rdbType)) throw new Error(`a value of RDB version ${v.rdbVersion} (type ${v.rdbType}) cannot be restored into RDB version ${destRdb}`);
  return new DumpPayload(type, downgradeStream(v.raw, v.rdbType, type), destRdb);
}

export interface RestoreKey {
  key: Buffer;
  /** Absolute expiry in ms since the epoch, or null. */
  expireMs: number | null;
  idleSeconds: number | null;
  lfuFreq: number | null;
}

/**
 * The RESTORE command for one snapshot key, in the form the destination's version knows:
 * ABSTTL, IDLETIME and FREQ came with 5.0 (before it the TTL is relative, so it is taken
 * from `nowMs`, and the eviction hints are dropped), REPLACE with 3.0 (before it, `replace`
 * is done by a DEL in front). Null when the key has expired by now on a destination that
 * needs a relative TTL: the source drops it too.
 */
export function restoreCommands(k: RestoreKey, payload: BulkWriter, replace: boolean, version: readonly [number, number], nowMs: number): CommandArg[][] | null {
  const [major] = version;
  if (major >= 5) {
    const args: CommandArg[] = ['RESTORE', k.key, k.expireMs ?? 0, payload];
    if (replace) args.push('REPLACE');
    if (k.expireMs !== null) args.push('ABSTTL');
    if (k.idleSeconds !== null) args.push('IDLETIME', k.idleSeconds);
    else if (k.lfuFreq !== null) args.push('FREQ', k.lfuFreq);
    return [args];
  }
  let ttl = 0;
  if (k.expireMs !== null) {
    ttl = k.expireMs - nowMs;
    if (ttl <= 0) return null;
  }
  if (major >= 3) return [replace ? ['RESTORE', k.key, ttl, payload, 'REPLACE'] : ['RESTORE', k.key, ttl, payload]];
  return replace ? [['DEL', k.key], ['RESTORE', k.key, ttl, payload]] : [['RESTORE', k.key, ttl, payload]];
}
