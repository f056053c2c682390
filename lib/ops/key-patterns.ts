/** Which keys pass a filter's include and exclude patterns (prefix, Redis glob or regex). */
import { compileGlob, globMatch, G_BYTE, G_STAR, type Glob } from './glob';

export type KeyPatternType = 'prefix' | 'glob' | 'regex';

/**
 * A key pattern. `prefix` and `glob` patterns are matched against the key's bytes (the
 * pattern text as UTF-8); a glob is Redis-style (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`).
 * A `regex` is a JavaScript RegExp source run on the key read as latin1 (one character per
 * byte, so `\xff` matches byte 0xff; other characters of the source stand for their UTF-8
 * bytes), with the `s` flag so that `.` matches any byte.
 */
export interface KeyPattern {
  type: KeyPatternType;
  pattern: string;
}

/** The RegExp a `regex` pattern runs as (see KeyPattern); throws a SyntaxError for a bad one. */
export function compileKeyRegex(source: string): RegExp {
  return new RegExp(Buffer.from(source, 'utf8').toString('latin1'), 's');
}

const M_PREFIX = 0;
const M_EXACT = 1;
const M_GLOB = 2;
const M_REGEX = 3;

interface Matcher {
  kind: number;
  bytes: Buffer;
  glob: Glob | null;
  regex: RegExp | null;
}

function compilePattern(p: KeyPattern): Matcher {
  if (p.type === 'regex') return { kind: M_REGEX, bytes: Buffer.alloc(0), glob: null, regex: compileKeyRegex(p.pattern) };
  const bytes = Buffer.from(p.pattern, 'utf8');
  if (p.type === 'prefix') return { kind: M_PREFIX, bytes, glob: null, regex: null };
  const glob = compileGlob(bytes);
  // plain text, or plain text and one final `*`: a byte comparison does
  const last = glob.kinds.length - 1;
  let literal = 0;
  while (literal <= last && glob.kinds[literal] === G_BYTE) literal++;
  if (literal === last + 1) return { kind: M_EXACT, bytes: Buffer.from(glob.bytes), glob: null, regex: null };
  if (literal === last && glob.kinds[last] === G_STAR) return { kind: M_PREFIX, bytes: Buffer.from(glob.bytes.subarray(0, last)), glob: null, regex: null };
  return { kind: M_GLOB, bytes, glob, regex: null };
}

// a byte loop: Buffer#compare's argument checks cost more than comparing a short prefix
function startsWith(key: Buffer, prefix: Buffer): boolean {
  const n = prefix.length;
  if (key.length < n) return false;
  for (let i = 0; i < n; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

function bytesMatch(m: Matcher, key: Buffer): boolean {
  switch (m.kind) {
    case M_PREFIX:
      return startsWith(key, m.bytes);
    case M_EXACT:
      return key.equals(m.bytes);
    default:
      return globMatch(m.glob as Glob, key);
  }
}

/** A key passes when it matches one of `include` (or there are none) and none of `exclude`. */
export class KeyPatterns {
  /** False when there are no patterns at all: every key passes. */
  readonly active: boolean;
  private readonly include: Matcher[];
  private readonly exclude: Matcher[];

  constructor(include: KeyPattern[], exclude: KeyPattern[]) {
    this.include = include.map(compilePattern);
    this.exclude = exclude.map(compilePattern);
    this.active = this.include.length > 0 || this.exclude.length > 0;
  }

  passes(key: Buffer): boolean {
    let latin1: string | null = null;
    if (this.include.length > 0) {
      let hit = false;
      for (const m of this.include) {
        if (m.kind === M_REGEX) hit = (m.regex as RegExp).test((latin1 ??= key.toString('latin1')));
        else hit = bytesMatch(m, key);
        if (hit) break;
      }
      if (!hit) return false;
    }
    for (const m of this.exclude) {
      if (m.kind === M_REGEX ? (m.regex as RegExp).test((latin1 ??= key.toString('latin1'))) : bytesMatch(m, key)) return false;
    }
    return true;
  }
}
