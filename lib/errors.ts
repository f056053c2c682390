/**
 * What every error of this package is: a code, which a node's red status shows and a Catch
 * node can tell apart; a message saying what happened and what to do; the cause, where there
 * is one. The layers add their codes (RdbError, RespError, SinkError, ReplicationError …).
 */
export class SyncError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The code a status shows: the error's own, unless it carries a better one (a destination's reply code). */
  get statusCode(): string {
    return this.code;
  }
}
