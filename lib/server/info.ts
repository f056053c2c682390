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
