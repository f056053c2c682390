/** What a server says of itself in INFO: the one parser every stage uses. */

export type Info = Record<string, string>;

export function parseInfo(text: string): Info {
  const fields: Info = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** Keys of every db in INFO keyspace (`db0:keys=3,expires=0,avg_ttl=0`). */
export function keyspaceKeys(info: Info): number {
  let keys = 0;
  for (const [field, value] of Object.entries(info)) {
    if (!/^db\d+$/.test(field)) continue;
    const m = /(?:^|,)keys=(\d+)/.exec(value);
    if (m !== null) keys += Number(m[1]);
  }
  return keys;
}

/** INFO sections present (`# Memory` → "memory"). */
export function infoSections(text: string): Set<string> {
  return new Set([...text.matchAll(/^# *(\w+)/gm)].map((m) => m[1].toLowerCase()));
}

export function infoNumber(info: Info, field: string): number | undefined {
  const v = info[field];
  if (v === undefined || !/^-?\d+(\.\d+)?$/.test(v)) return undefined;
  return Number(v);
}

/** From redis_version (`7.2.4`; `8.0-m01` is 8.0.0). */
export type Version = [major: number, minor: number, patch: number];

export function parseVersion(text: string | undefined): Version | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text ?? '');
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

export function showVersion(v: Version): string {
  return v.join('.');
}
