/**
 * The parser's primitive reads, which the stream and module value decoders build on: an
 * interface of its own, so that those decoders do not import the parser that imports them.
 */
export interface RdbReads {
  /** Absolute number of bytes consumed so far. */
  readonly offset: number;
  u8(): number;
  bytes(n: number): Buffer;
  int64le(): number;
  double8(): number;
  /** A length as a number; lengths past 2^53 cannot be real and are rejected. */
  len(): number;
  /** A length-encoded unsigned 64-bit value that may exceed 2^53 (stream ids, counters). */
  lenBig(): bigint;
  /** A string in any of its encodings (raw, integer, LZF). */
  str(): Buffer;
}
