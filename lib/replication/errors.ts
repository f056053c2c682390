import { SyncError } from '../errors';

export type ReplicationErrorCode =
  | 'CONNECT'
  | 'CLOSED'
  | 'TIMEOUT'
  | 'AUTH'
  | 'NOPERM'
  /** A TLS-only port reached without TLS. */
  | 'TLS_REQUIRED'
  /** A TLS handshake that failed: a plain port, a certificate refused on either side. */
  | 'TLS'
  | 'LOADING'
  | 'NOMASTERLINK'
  | 'REFUSED'
  | 'SYNC_FAILED'
  | 'PROTOCOL'
  /** The scan source: keyspace notifications are off on a master (notify-keyspace-events). */
  | 'NOTIFY'
  | 'LOCAL';

/** Faults a retry can cure; the others need the user to change something. */
const RETRYABLE: ReadonlySet<ReplicationErrorCode> = new Set(['CONNECT', 'CLOSED', 'TIMEOUT', 'LOADING', 'NOMASTERLINK', 'SYNC_FAILED', 'PROTOCOL']);

export class ReplicationError extends SyncError<ReplicationErrorCode> {
  override readonly name = 'ReplicationError';
  constructor(code: ReplicationErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  /** Any failure as a ReplicationError; a local one (a full spool, a disk error) is not retryable. */
  static from(err: unknown): ReplicationError {
    if (err instanceof ReplicationError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new ReplicationError('LOCAL', message, { cause: err });
  }
}
