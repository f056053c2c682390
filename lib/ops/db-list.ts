/**
 * The one syntax for a list of dbs in a node's settings (the op filter's Only/Not dbs, the
 * precheck's Destination dbs): db numbers and ranges, separated by commas, spaces or new
 * lines, e.g. "0, 2, 5-7". Empty text is an empty list. resources/editor.js (dbList) is the
 * editor's copy.
 */

/** A db number as text ("3"), or null; nine digits at most, as a db index is an int in Redis. */
export function dbNumber(text: string): number | null {
  return /^\d{1,9}$/.test(text) ? Number(text) : null;
}

/** The terms of a list typed with commas, spaces or new lines between them. */
export function listWords(text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).filter((w) => w !== '');
}

/** "0, 2, 5-7" → [0, 2, 5, 6, 7]; each bad term goes to `problems`, named by `field`. */
export function parseDbList(text: string | undefined, field: string, problems: string[]): number[] {
  const dbs: number[] = [];
  for (const w of listWords(text)) {
    const range = /^(\d+)-(\d+)$/.exec(w);
    const lo = dbNumber(range ? range[1] : w);
    const hi = range ? dbNumber(range[2]) : lo;
    if (lo === null || hi === null || hi < lo) {
      problems.push(`${field}: "${w}" is not a db number or a range like 2-5`);
      continue;
    }
    for (let db = lo; db <= hi; db++) dbs.push(db);
  }
  return dbs;
}
