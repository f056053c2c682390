/**
 * What the flow does to a source key before it reaches the destination: the op filter's db
 * selection, remap, key prefix and key patterns (run through the filter's own engine, so the
 * verification and the sync cannot disagree), then the user's renames (keys renamed in a
 * function node after the filter). And back, for the keys the destination has in addition.
 */
import { OpFilter } from '../ops/filter';
import { DB_TOKEN, type OpFilterConfig } from '../ops/filter-config';
import type { KeyOp } from '../ops/operation';
import type { DbKey } from './side';

/** A key prefix a function node renames: `from` at the start of a key becomes `to`. */
export interface RenameRule {
  from: Buffer;
  to: Buffer;
}


/** "old: => new:" one rule a line; blank lines and lines starting with # are skipped. */
export function parseRenames(text: string | undefined): { rules: RenameRule[]; problems: string[] } {
  const rules: RenameRule[] = [];
  const problems: string[] = [];
  (text ?? '').split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(.*?)\s*=>\s*(.*)$/.exec(line);
    if (m === null || m[1] === '') problems.push(`renames line ${i + 1}: write it as "old-prefix => new-prefix"`);
    else rules.push({ from: Buffer.from(m[1]), to: Buffer.from(m[2]) });
  });
  return { rules, problems };
}

export class KeyMapping {
  private readonly filter: OpFilter | null;

  constructor(
    private readonly filterConfig: OpFilterConfig | null = null,
    private readonly renames: readonly RenameRule[] = [],
  ) {
    this.filter = filterConfig === null ? null : new OpFilter(filterConfig);
  }

  /** Whether a source db is synced at all (the filter's db selection). */
  dbSynced(db: number): boolean {
    const cfg = this.filterConfig;
    if (cfg === null) return true;
    const include = cfg.includeDbs ?? [];
    return (include.length === 0 || include.includes(db)) && !(cfg.excludeDbs ?? []).includes(db);
  }

  /** The destination db a source db goes to. */
  destinationDb(db: number): number {
    const cfg = this.filterConfig;
    if (cfg === null) return db;
    return cfg.allDbsToZero === true ? 0 : (cfg.remap?.[db] ?? db);
  }

  /** Where each source key is in the destination; null for a key the flow does not sync. */
  forward(keys: readonly DbKey[]): Array<DbKey | null> {
    let mapped: Array<DbKey | null> = keys.map((k) => ({ db: k.db, key: k.key }));
    if (this.filter !== null) {
      // the filter changes the key operations it keeps in place: db remapped, prefix added
      const ops = mapped as unknown as KeyOp[];
      for (const op of ops) (op as { kind: string }).kind = 'key';
      const kept = new Set<KeyOp>(this.filter.apply(ops).kept as KeyOp[]);
      mapped = ops.map((op) => (kept.has(op) ? { db: op.db, key: op.key } : null));
    }
    if (this.renames.length === 0) return mapped;
    return mapped.map((k) => (k === null ? null : { db: k.db, key: this.rename(k.key) }));
  }

  private rename(key: Buffer): Buffer {
    for (const r of this.renames) if (startsWith(key, r.from)) return Buffer.concat([r.to, key.subarray(r.from.length)]);
    return key;
  }

  /**
   * The source keys that could have become this destination key (each checked by forward():
   * the caller keeps those that map back to it). Empty for a key no source key becomes, such
   * as one without the filter's prefix.
   */
  candidates(destination: DbKey, sourceDbs: readonly number[]): DbKey[] {
    const names: Buffer[] = [destination.key];
    for (const r of this.renames) if (startsWith(destination.key, r.to)) names.push(Buffer.concat([r.from, destination.key.subarray(r.to.length)]));
    const out: DbKey[] = [];
    const cfg = this.filterConfig;
    const prefix = cfg?.keyPrefix ?? '';
    for (const db of sourceDbs) {
      if (this.destinationDb(db) !== destination.db) continue;
      const p = Buffer.from(prefix.split(DB_TOKEN).join(String(db)));
      for (const name of names) if (startsWith(name, p)) out.push({ db, key: name.subarray(p.length) });
    }
    const mapped = this.forward(out);
    return out.filter((_, i) => {
      const m = mapped[i];
      return m !== null && m.db === destination.db && m.key.equals(destination.key);
    });
  }
}

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix);
}
