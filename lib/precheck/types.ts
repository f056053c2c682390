/**
 * The vocabulary of the precheck: what a check reports, what the runner returns, and the
 * options that change what must hold.
 */

export type Severity = 'error' | 'warning' | 'info';

/** Which side of the sync a finding is about. */
export type Side = 'source' | 'destination';

/**
 * One thing a check found. An id names the topic (the same id may come as an error, a
 * warning or an info, by what was found), so a flow can react to a topic whatever the outcome.
 */
export interface Finding {
  id: string;
  severity: Severity;
  /** What was found, with the numbers. */
  message: string;
  /** What to do about it; empty for an info that needs nothing. */
  remedy: string;
  side?: Side;
  /** host:port of the server the finding is about, when it is about one. */
  node?: string;
}

export interface PrecheckOptions {
  /**
   * The sink's conflict policy "precheck and intercept": every selected destination db must be
   * empty (the sync's own checkpoint keys `redis-sync:*` aside). Default false.
   */
  requireEmptyDestination?: boolean;
  /**
   * When the destination cannot read the source's RDB payloads (RESTORE), the sink may write
   * keys with typed commands instead: then that is a warning, else an error. Default true.
   */
  typedFallback?: boolean;
  /** The destination dbs the sync writes into, for the emptiness check. Default: every db. */
  databases?: number[];
  /** How long the source's write rate is sampled. Default 1000 ms. */
  writeRateSampleMs?: number;
  /** A backlog covering fewer seconds of writes than this is a warning. Default 60. */
  minBacklogSeconds?: number;
  /** Keys sampled per source master for the largest-key estimate. Default 300. */
  keySample?: number;
}

export interface PrecheckReport {
  /** No error finding. */
  passed: boolean;
  /** Every finding: errors first, then warnings, then infos, each in check order. */
  findings: Finding[];
  errors: Finding[];
  warnings: Finding[];
  /** When the run started (ms since the epoch) and how long it took. */
  startedAt: number;
  durationMs: number;
}

/**
 * Thrown by a check that cannot run for a reason that is not a fault of its own (the endpoint
 * could not be reached, INFO is refused): the runner reports it as a skipped check.
 */
export class SkipCheck extends Error {
  override readonly name = 'SkipCheck';
  constructor(
    reason: string,
    /** The reason was already reported as an error (an unreachable endpoint): then the skip is only an info. */
    readonly alreadyReported = false,
  ) {
    super(reason);
  }
}
