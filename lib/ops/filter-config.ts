/**
 * The op filter's settings: the configuration the engine (filter.ts) takes, its validation,
 * and the reading of the text fields the node's edit dialog stores (readFilterSettings),
 * which the node adapter goes through. nodes/redis-op-filter/redis-op-filter.html holds the
 * editor's copy of these rules, so a bad field is marked before deploy.
 */
import { NOT_LISTABLE } from './commands';
import { dbNumber, listWords, parseDbList } from './db-list';
import { compileKeyRegex, type KeyPattern, type KeyPatternType } from './key-patterns';

export type CommandPreset = 'all' | 'community' | 'enhanced' | 'none';
export type FlushPolicy = 'apply' | 'drop' | 'error';

export interface OpFilterConfig {
  /** The commands kept (default "all": every write, and every command the table does not know). */
  preset?: CommandPreset;
  /** Command names kept besides the preset's. */
  allow?: string[];
  /** Command names dropped, whatever the preset and `allow` say. */
  deny?: string[];
  /** Only operations of these source dbs are kept (empty: all dbs). */
  includeDbs?: number[];
  /** Operations of these source dbs are dropped. */
  excludeDbs?: number[];
  /** Source db to destination db; dbs not named keep their number. */
  remap?: Record<number, number>;
  /** Every db to db 0 (a cluster destination); `remap` must be empty then. */
  allDbsToZero?: boolean;
  /** Put before every key; `{db}` stands for the SOURCE db (needs allDbsToZero), e.g. "db{db}:". */
  keyPrefix?: string;
  /** A key is kept when it matches one of these (or there are none) … */
  includeKeys?: KeyPattern[];
  /** … and none of these. */
  excludeKeys?: KeyPattern[];
  /** FLUSHALL/FLUSHDB (default "apply"); "error" makes apply() throw a FilterError. */
  flush?: FlushPolicy;
}

/** What stands for the source db in a key prefix. */
export const DB_TOKEN = '{db}';

const PRESETS: readonly CommandPreset[] = ['all', 'community', 'enhanced', 'none'];
const FLUSH_POLICIES: readonly FlushPolicy[] = ['apply', 'drop', 'error'];
const PATTERN_TYPES: readonly KeyPatternType[] = ['prefix', 'glob', 'regex'];
const COMMAND_NAME = /^[A-Za-z0-9][A-Za-z0-9._|-]*$/;

/** The node's fields as the editor stores them. */
export interface OpFilterText {
  preset?: string;
  allow?: string;
  deny?: string;
  /** A db list (db-list.ts), as excludeDbs. */
  includeDbs?: string;
  excludeDbs?: string;
  remap?: string;
  allDbsToZero?: boolean;
  keyPrefix?: string;
  includeKeys?: string;
  excludeKeys?: string;
  flush?: string;
}

/** "0:3, 5:0" */
function parseRemap(text: string | undefined, problems: string[]): Record<number, number> {
  const remap: Record<number, number> = {};
  for (const w of listWords(text)) {
    const m = /^(\d+):(\d+)$/.exec(w);
    const from = m ? dbNumber(m[1]) : null;
    const to = m ? dbNumber(m[2]) : null;
    if (from === null || to === null) {
      problems.push(`remap: "${w}" is not source:destination, e.g. 0:3`);
    } else if (from in remap) {
      problems.push(`remap: db ${from} is mapped twice`);
    } else {
      remap[from] = to;
    }
  }
  return remap;
}

/**
 * One pattern a line, each starting with its type: `prefix:`, `glob:` or `re:`. Blank
 * lines and lines starting with `#` are skipped; whitespace around a line is not part of it.
 */
function parseKeyPatterns(text: string | undefined, field: string, problems: string[]): KeyPattern[] {
  const patterns: KeyPattern[] = [];
  (text ?? '').split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(prefix|glob|re|regex):(.*)$/.exec(line);
    if (m === null) {
      problems.push(`${field} line ${index + 1}: start it with prefix:, glob: or re:`);
      return;
    }
    patterns.push({ type: m[1] === 'prefix' ? 'prefix' : m[1] === 'glob' ? 'glob' : 'regex', pattern: m[2] });
  });
  return patterns;
}

/**
 * The node's text fields as a configuration, with every problem: text that does not parse,
 * then what validateFilterConfig finds in what did. Usable only when `problems` is empty.
 */
export function readFilterSettings(t: OpFilterText): { config: OpFilterConfig; problems: string[] } {
  const problems: string[] = [];
  const config: OpFilterConfig = {
    preset: (t.preset || 'all') as CommandPreset,
    allow: listWords(t.allow).map((w) => w.toUpperCase()),
    deny: listWords(t.deny).map((w) => w.toUpperCase()),
    includeDbs: parseDbList(t.includeDbs, 'includeDbs', problems),
    excludeDbs: parseDbList(t.excludeDbs, 'excludeDbs', problems),
    remap: parseRemap(t.remap, problems),
    allDbsToZero: t.allDbsToZero === true,
    keyPrefix: t.keyPrefix ?? '',
    includeKeys: parseKeyPatterns(t.includeKeys, 'includeKeys', problems),
    excludeKeys: parseKeyPatterns(t.excludeKeys, 'excludeKeys', problems),
    flush: (t.flush || 'apply') as FlushPolicy,
  };
  problems.push(...validateFilterConfig(config));
  return { config, problems };
}

const isDb = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;

/** What is wrong with a configuration, each problem naming its field; empty when it is good. */
export function validateFilterConfig(cfg: OpFilterConfig): string[] {
  const problems: string[] = [];
  if (cfg.preset !== undefined && !PRESETS.includes(cfg.preset)) problems.push(`preset: "${cfg.preset}" is not one of ${PRESETS.join(', ')}`);
  const flush = cfg.flush ?? 'apply';
  if (!FLUSH_POLICIES.includes(flush)) problems.push(`flush: "${flush}" is not one of ${FLUSH_POLICIES.join(', ')}`);
  const allow = new Set((cfg.allow ?? []).map((n) => n.toUpperCase()));
  for (const [field, names] of [['allow', cfg.allow ?? []], ['deny', cfg.deny ?? []]] as const) {
    for (const name of names) {
      const upper = name.toUpperCase();
      if (!COMMAND_NAME.test(name)) problems.push(`${field}: "${name}" is not a command name`);
      else if (field === 'deny' && NOT_LISTABLE.has(upper)) problems.push(`deny: ${upper} cannot be denied: ${upper.startsWith('FLUSH') ? 'set the flush policy' : 'it is kept when a command of its transaction is'}`);
      else if (field === 'deny' && allow.has(upper)) problems.push(`deny: ${upper} is in the allow list too`);
      else if (field === 'allow' && upper.startsWith('FLUSH') && NOT_LISTABLE.has(upper) && flush !== 'apply') problems.push(`allow: ${upper} follows the flush policy ("${flush}"), not the allow list`);
    }
  }
  const include = new Set<number>();
  for (const [field, dbs] of [['includeDbs', cfg.includeDbs ?? []], ['excludeDbs', cfg.excludeDbs ?? []]] as const) {
    for (const db of dbs) {
      if (!isDb(db)) problems.push(`${field}: ${db} is not a db number`);
      else if (field === 'includeDbs') include.add(db);
      else if (include.has(db)) problems.push(`excludeDbs: db ${db} is in includeDbs too`);
    }
  }
  const remap = Object.entries(cfg.remap ?? {});
  for (const [from, to] of remap) {
    if (!/^\d+$/.test(from) || !isDb(to)) problems.push(`remap: ${from}:${to} is not source:destination db numbers`);
  }
  if (cfg.allDbsToZero === true && remap.length > 0) problems.push('remap: leave it empty when every db goes to db 0');
  if ((cfg.keyPrefix ?? '').includes(DB_TOKEN) && cfg.allDbsToZero !== true) {
    problems.push(`keyPrefix: ${DB_TOKEN} tells the dbs apart once they all go to db 0: set "every db to db 0" too`);
  }
  for (const [field, patterns] of [['includeKeys', cfg.includeKeys ?? []], ['excludeKeys', cfg.excludeKeys ?? []]] as const) {
    patterns.forEach((p, i) => {
      const where = `${field}[${i}]`;
      if (!PATTERN_TYPES.includes(p.type)) problems.push(`${where}: type "${p.type}" is not prefix, glob or regex`);
      else if (typeof p.pattern !== 'string' || p.pattern === '') problems.push(`${where}: the pattern is empty`);
      else if (p.type === 'regex') {
        try {
          compileKeyRegex(p.pattern);
        } catch (err) {
          problems.push(`${where}: ${(err as Error).message}`);
        }
      }
    });
  }
  return problems;
}
