/**
 * The two kinds of "error" in RESP are deliberately different types:
 *
 * - `RespError` is a *value*: the server answered `-ERR ...` (or the RESP3 blob error `!`).
 *   The parser returns it like any other reply; the connection is still healthy.
 * - `RespProtocolError` is *thrown*: the bytes are not RESP. The stream position is lost, so
 *   the only safe reaction is to drop the connection (and, for replication, resync).
 */
import { SyncError } from '../errors';

/** A reply of type `-` or `!`. Extends Error so it can be handed to `done(err)` or rejected as is. */
export class RespError extends SyncError {
  override readonly name = 'RespError';

  /**
   * The code is the first word of the message ("ERR", "WRONGTYPE", "MOVED", "NOAUTH", ...):
   * Redis's convention for a machine-readable error class, which callers dispatch on.
   */
  constructor(message: string) {
    const space = message.indexOf(' ');
    super(space === -1 ? message : message.slice(0, space), message);
  }
}

export type RespProtocolErrorCode =
  /** The first byte of a value is not a RESP2/RESP3 type byte. */
  | 'UNKNOWN_TYPE'
  /** A length or count is empty, has a non-digit, or is negative where only -1 (null) is allowed. */
  | 'BAD_LENGTH'
  /** A length or count is above the configured maximum. */
  | 'LENGTH_LIMIT'
  /** A line or payload is not terminated by CRLF, or a line holds a bare CR or LF. */
  | 'MISSING_CRLF'
  /** A line without CRLF grew beyond the configured maximum line length. */
  | 'LINE_TOO_LONG'
  /** Aggregates are nested deeper than the configured maximum depth. */
  | 'TOO_DEEP'
  /** The content of an integer, double, boolean, null, big number or verbatim string is malformed. */
  | 'BAD_VALUE';

/** Thrown when the input is not valid RESP. After it, the parser refuses further input. */
export class RespProtocolError extends SyncError<RespProtocolErrorCode> {
  override readonly name = 'RespProtocolError';

  constructor(
    code: RespProtocolErrorCode,
    /** Absolute byte offset, counted from the first byte ever pushed into the parser. */
    readonly offset: number,
    detail: string,
    /** The offending byte, when a single byte is at fault. */
    readonly byte?: number,
  ) {
    super(code, `RESP ${code} at byte ${offset}: ${detail}`);
  }
}

/** Renders a byte for an error message: printable ASCII as itself, anything else as hex. */
export function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte >= 0x21 && byte <= 0x7e ? `'${String.fromCharCode(byte)}' (${hex})` : hex;
}
