/**
 * Every way an RDB stream can be wrong ends in this one error type, so callers can tell
 * bad input (report, keep what was already synced) from a bug (crash loudly).
 */
import { SyncError } from '../errors';

export type RdbErrorCode =
  | 'BAD_MAGIC'
  | 'BAD_VERSION'
  | 'UNKNOWN_TYPE'
  | 'UNKNOWN_OPCODE'
  | 'TRUNCATED'
  | 'BAD_LZF'
  | 'BAD_CHECKSUM'
  | 'BAD_LENGTH'
  | 'BAD_ENCODING'
  | 'TRAILING_DATA';

export class RdbError extends SyncError<RdbErrorCode> {
  override readonly name = 'RdbError';
  constructor(
    code: RdbErrorCode,
    /** Absolute byte offset in the RDB stream (or DUMP payload) where the fault was found. */
    readonly offset: number,
    /** What was wrong, without the code and offset. */
    readonly detail: string,
  ) {
    super(code, `RDB ${code} at byte ${offset}: ${detail}`);
  }
}
