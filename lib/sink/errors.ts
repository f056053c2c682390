import { SyncError } from '../errors';
import type { RespError } from '../resp/errors';

export type SinkErrorCode =
  /** No connection to the destination: not opened, lost, or its slot map unreadable (retried, up to a point). */
  | 'CONNECT'
  /** Refused credentials, or a server that wants a password and got none. */
  | 'AUTH'
  /** A TLS-only port reached without TLS. */
  | 'TLS_REQUIRED'
  /** A TLS handshake that failed: a plain port, a certificate refused on either side. */
  | 'TLS'
  /** The server refuses this client for good (protected mode, say). */
  | 'REFUSED'
  /** The server is loading its data set (a restart): it answers once it is done. */
  | 'LOADING'
  /** A destination master that evicts keys, not allowed by the user (see eviction.ts). */
  | 'EVICTION'
  | 'CLUSTERDOWN'
  | 'MOVED'
  | 'CROSSSLOT'
  | 'SLOT'
  | 'NOT_EMPTY'
  | 'REPLY';

/** Faults of opening a connection that no retry cures: they need the user to change a setting. */
const PERMANENT: ReadonlySet<SinkErrorCode> = new Set(['AUTH', 'TLS_REQUIRED', 'TLS', 'REFUSED', 'EVICTION']);

/** What to do about a destination's refusal, for the codes whose cause is not the operation but the destination. */
const REMEDIES: Readonly<Record<string, string>> = {
  OOM: 'The destination is full: maxmemory is reached and its maxmemory-policy noeviction refuses writes. Raise its maxmemory (CONFIG SET maxmemory, and in its configuration) or free memory there, then redeploy: the sync continues where it stopped',
  NOPERM: 'The destination user may not run it: grant it what the sink runs (in practice ~* +@all), then redeploy',
  READONLY: 'This node is a read-only replica: point the destination endpoint at its master, then redeploy',
  MISCONF: 'The destination cannot save its RDB snapshots and refuses writes until it can: see its log (disk full, permissions), then redeploy',
};

/**
 * A failure to apply an operation. For a refused command the message names the command,
 * the key and the source offset, and `reply` holds the destination's error (OOM, READONLY,
 * NOPERM, WRONGTYPE, BUSYKEY …), so a Catch node can tell them apart.
 */
export class SinkError extends SyncError<SinkErrorCode> {
  override readonly name = 'SinkError';
  constructor(
    code: SinkErrorCode,
    message: string,
    readonly reply: RespError | null = null,
  ) {
    super(code, message);
  }

  /** A refused command shows the destination's reason (WRONGTYPE, OOM …), not REPLY. */
  override get statusCode(): string {
    return this.reply?.code ?? this.code;
  }

  /** A fault of the configuration, not of the network: trying again cannot cure it. */
  get permanent(): boolean {
    return PERMANENT.has(this.code);
  }

  /** `node`: the destination node that refused, where it is known. */
  static fromReply(error: RespError, tag: unknown, node?: string): SinkError {
    const refusal = `the destination${node === undefined ? '' : ` ${node}`} refused ${describe(tag)}: ${error.message}`;
    return new SinkError('REPLY', Object.hasOwn(REMEDIES, error.code) ? `${refusal.replace(/\.$/, '')}. ${REMEDIES[error.code]}.` : refusal, error);
  }

  /** A command the destination kept redirecting (MOVED, TRYAGAIN …) through every try. */
  static redirected(tries: number, error: RespError, tag: unknown): SinkError {
    return new SinkError('MOVED', `the destination still redirects ${describe(tag)} after ${tries} slot map refreshes (about a minute): ${error.message}`, error);
  }
}

function describe(tag: unknown): string {
  if (tag !== null && typeof tag === 'object' && 'kind' in tag) {
    const op = tag as { kind: string; name?: string; key?: Buffer; args?: Buffer[]; keys?: number[]; offset?: number; db?: number };
    if (op.kind === 'key' && op.key) return `the snapshot key "${op.key.toString('latin1').slice(0, 80)}" (db ${op.db})`;
    if (op.kind === 'command' && op.name) {
      const key = op.keys?.length && op.args ? ` on key "${op.args[op.keys[0]].toString('latin1').slice(0, 80)}"` : '';
      return `${op.name}${key} (db ${op.db}, source offset ${op.offset})`;
    }
  }
  if (tag !== null && typeof tag === 'object' && 'ops' in tag) {
    const g = tag as { slot: number; ops: unknown[] };
    return `a transaction of ${g.ops.length} operations on slot ${g.slot} (first: ${describe(g.ops[0])})`;
  }
  return 'a command';
}
