import type { RespError } from '../resp/errors';

export type SinkErrorCode = 'CONNECT' | 'CONNECTION' | 'CLUSTERDOWN' | 'MOVED' | 'CROSSSLOT' | 'SLOT' | 'NOT_EMPTY' | 'REPLY';

/**
 * A failure to apply an operation. For a refused command the message names the command,
 * the key and the source offset, and `reply` holds the destination's error (OOM, READONLY,
 * NOPERM, WRONGTYPE, BUSYKEY …), so a Catch node can tell them apart.
 */
export class SinkError extends Error {
  override readonly name = 'SinkError';
  constructor(
    readonly code: SinkErrorCode,
    message: string,
    readonly reply: RespError | null = null,
  ) {
    super(message);
  }

  static fromReply(error: RespError, tag: unknown): SinkError {
    return new SinkError('REPLY', `the destination refused ${describe(tag)}: ${error.message}`, error);
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
