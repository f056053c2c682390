/**
 * The RDB version a Redis server writes, by its version [major, minor]. RESTORE accepts
 * payloads up to the server's own RDB version, so this is also the newest it reads: the sink
 * chooses RESTORE or typed commands by it, and the precheck reports it.
 */
export function rdbVersionOfServer([major, minor]: readonly [number, number, ...number[]]): number {
  if (major > 7 || (major === 7 && minor >= 4)) return 12;
  if (major === 7 && minor >= 2) return 11;
  if (major === 7) return 10;
  if (major >= 5) return 9;
  if (major === 4) return 8;
  if (major === 3 && minor >= 2) return 7;
  return 6;
}
