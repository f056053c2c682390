/** Redis glob patterns (KEYS, SCAN MATCH …), compiled once and matched against key bytes. */

export const G_BYTE = 0;
const G_ANY = 1;
const G_SET = 2;
export const G_STAR = 3;

/** A glob compiled to one token per pattern position; `sets[i]` is a 256-byte membership table. */
export interface Glob {
  kinds: Uint8Array;
  bytes: Uint8Array;
  sets: Array<Uint8Array | null>;
}

/**
 * Compiles a Redis glob exactly as Redis's stringmatchlen() (util.c) reads it, including its corner
 * cases: a `\` escapes the next byte (a trailing one is literal), `[^…]` negates, a range
 * may be written backwards, `]` right after `[` closes an empty set, and an unterminated
 * `[` takes the rest of the pattern as its members.
 */
export function compileGlob(pattern: Buffer): Glob {
  const kinds: number[] = [];
  const bytes: number[] = [];
  const sets: Array<Uint8Array | null> = [];
  const n = pattern.length;
  let i = 0;
  const push = (kind: number, byte: number, set: Uint8Array | null): void => {
    kinds.push(kind);
    bytes.push(byte);
    sets.push(set);
  };
  while (i < n) {
    const c = pattern[i];
    if (c === 0x2a /* * */) {
      if (kinds[kinds.length - 1] !== G_STAR) push(G_STAR, 0, null);
      i++;
    } else if (c === 0x3f /* ? */) {
      push(G_ANY, 0, null);
      i++;
    } else if (c === 0x5c /* \ */) {
      push(G_BYTE, i + 1 < n ? pattern[i + 1] : c, null);
      i += i + 1 < n ? 2 : 1;
    } else if (c === 0x5b /* [ */) {
      const set = new Uint8Array(256);
      i++;
      const negate = i < n && pattern[i] === 0x5e; /* ^ */
      if (negate) i++;
      for (;;) {
        if (i >= n) break;
        const p = pattern[i];
        if (p === 0x5c && n - i >= 2) {
          set[pattern[i + 1]] = 1;
          i += 2;
        } else if (p === 0x5d /* ] */) {
          i++;
          break;
        } else if (n - i >= 3 && pattern[i + 1] === 0x2d /* - */) {
          let lo = p;
          let hi = pattern[i + 2];
          if (lo > hi) [lo, hi] = [hi, lo];
          set.fill(1, lo, hi + 1);
          i += 3;
        } else {
          set[p] = 1;
          i++;
        }
      }
      if (negate) for (let b = 0; b < 256; b++) set[b] ^= 1;
      push(G_SET, 0, set);
    } else {
      push(G_BYTE, c, null);
      i++;
    }
  }
  return { kinds: Uint8Array.from(kinds), bytes: Uint8Array.from(bytes), sets };
}

/** Glob matching with one backtrack point (the last `*`): linear in practice, never exponential. */
export function globMatch(g: Glob, s: Buffer): boolean {
  const { kinds, bytes, sets } = g;
  const n = kinds.length;
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    if (p < n) {
      const k = kinds[p];
      if (k === G_STAR) {
        starP = ++p;
        starI = i;
        continue;
      }
      const c = s[i];
      if (k === G_ANY || (k === G_BYTE ? bytes[p] === c : (sets[p] as Uint8Array)[c] === 1)) {
        p++;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    i = ++starI;
  }
  while (p < n && kinds[p] === G_STAR) p++;
  return p === n;
}
