/**
 * Credit-based flow control between a source node and the sinks its batches reach, across
 * Node-RED's wires (which have none). A source may have `window` batches in flight; a sink
 * acknowledges each batch (by its `seq`) once applied, and the source learns, per shard,
 * the position up to which everything is applied: what it may save as its resume point.
 * Sources and sinks meet in this process-wide registry by the source node's id, which
 * every batch carries (msg.redisSync.source). With no sink attached nothing waits.
 * Others that wait on the count (a slot router's barrier) wait for changed().
 *
 * A position is reported applied only when every batch handed on before it was acknowledged:
 * batches reach the sinks in order, so an acknowledgement of a later batch cannot hide an
 * earlier one that is still on its way. What breaks that order is a batch that will never be
 * applied: one a sink failed on (it stops acknowledging, so nothing after it is reported), or
 * one in flight to a sink that closed while the source runs (Node-RED drops messages to a
 * node it is replacing). Once a sink closed with batches unapplied, no position is reported
 * any more until the source starts again (reset()) and replays from the last applied one.
 */
/** Batches counted while no sink has ever acknowledged one, before the count is dropped. */
const UNACKNOWLEDGED_LIMIT = 1000;

type Entry = { seq: number; position: unknown; done: boolean };

/** Why some batch handed on will not be applied: a sink failed on it, or closed with it in flight. */
export interface FlowFault {
  sink: string;
  kind: 'failed' | 'gone';
  /** For 'failed': the sink's error (its code, else its message). */
  reason: string;
}

export class FlowControl {
  private static readonly registry = new Map<string, FlowControl>();

  static for(sourceId: string): FlowControl {
    let fc = FlowControl.registry.get(sourceId);
    if (!fc) {
      fc = new FlowControl();
      FlowControl.registry.set(sourceId, fc);
    }
    return fc;
  }

  /** Forgets a source (its node closed); waiting senders are released. */
  static drop(sourceId: string): void {
    const fc = FlowControl.registry.get(sourceId);
    FlowControl.registry.delete(sourceId);
    fc?.release();
  }

  window = 4;
  /** Called with the position up to which a shard's batches are all applied. */
  onApplied: ((shard: string, position: unknown) => void) | null = null;

  private inFlight = 0;
  private nextSeq = 1;
  private readonly sinks = new Set<string>();
  private waiters: Array<() => void> = [];
  /** Per shard, the batches not yet known applied, in send order. */
  private readonly queues = new Map<string, Entry[]>();
  private readonly shardOf = new Map<number, string>();
  private readonly faults: FlowFault[] = [];
  /** A sink closed with batches in flight: they are lost to this run, so no later position is applied. */
  private lost = false;
  /** What changed() handed out since the last change, if anything. */
  private change: { promise: Promise<void>; resolve: () => void } | null = null;

  /** Batches sent and not yet acknowledged. */
  get pending(): number {
    return this.inFlight;
  }

  get attached(): boolean {
    return this.sinks.size > 0;
  }

  /** The first thing that keeps batches handed on from being applied, if any (see the file comment). */
  get fault(): FlowFault | null {
    return this.faults[0] ?? null;
  }

  /**
   * Resolves at the next change of `pending` or `attached`: a batch acquired or acknowledged,
   * a sink attached or detached, the count dropped. One promise for all who ask in between.
   */
  changed(): Promise<void> {
    if (!this.change) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.change = { promise, resolve };
    }
    return this.change.promise;
  }

  /** A sink announces that it applies this source's batches (and will acknowledge them). */
  attach(sinkId: string): void {
    const size = this.sinks.size;
    this.sinks.add(sinkId);
    if (this.sinks.size !== size) this.notify();
  }

  /** A sink stopped on an error: what it was given and did not apply stays unapplied. */
  fail(sinkId: string, reason: string): void {
    this.faults.push({ sink: sinkId, kind: 'failed', reason });
    this.notify();
  }

  /** A sink closed: what was in flight to it is not applied, so no position past it may be reported. */
  detach(sinkId: string): void {
    const failed = this.faults.findIndex((f) => f.sink === sinkId && f.kind === 'failed');
    if (failed >= 0) this.faults.splice(failed, 1);
    if (this.sinks.has(sinkId) && [...this.queues.values()].some((q) => q.some((e) => !e.done))) {
      this.lost = true;
      this.faults.push({ sink: sinkId, kind: 'gone', reason: '' });
    }
    const had = this.sinks.delete(sinkId);
    if (this.sinks.size === 0) this.release();
    else if (had) this.notify();
  }

  /**
   * Before sending a batch: waits for room in the window, returns its seq. Batches are counted
   * from the first one, also before any sink attached (a sink attaches when its first batch
   * reaches it): a router holding a barrier must know those are not applied yet. Only a flow
   * that never acknowledges (no sink at all) stops being counted, past UNACKNOWLEDGED_LIMIT.
   */
  async acquire(shard: string, position: unknown): Promise<number> {
    while (this.sinks.size > 0 && this.inFlight >= this.window) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const seq = this.nextSeq++;
    if (this.sinks.size === 0 && this.inFlight >= UNACKNOWLEDGED_LIMIT) this.release();
    this.inFlight++;
    let q = this.queues.get(shard);
    if (!q) this.queues.set(shard, (q = []));
    q.push({ seq, position, done: false });
    this.shardOf.set(seq, shard);
    this.notify();
    return seq;
  }

  /** A sink applied batch `seq`. */
  ack(seq: number): void {
    const shard = this.shardOf.get(seq);
    if (shard === undefined) return;
    this.shardOf.delete(seq);
    if (this.inFlight > 0) this.inFlight--;
    this.notify();
    this.waiters.shift()?.();
    const q = this.queues.get(shard) as Entry[];
    const entry = q.find((e) => e.seq === seq);
    if (entry) entry.done = true;
    this.settle(shard, q);
  }

  /**
   * The stream of `shard` moved to `position` without a batch (link chatter, operations left
   * out): applied as soon as every batch before it is, at once when none is pending.
   */
  pass(shard: string, position: unknown): void {
    let q = this.queues.get(shard);
    if (!q) this.queues.set(shard, (q = []));
    const last = q[q.length - 1];
    // one such entry behind the pending batches is enough: only the newest position matters
    if (last !== undefined && last.seq === 0) last.position = position;
    else q.push({ seq: 0, position, done: true });
    this.settle(shard, q);
  }

  /**
   * The source starts (again) and replays from its last applied position: what it handed on
   * before is forgotten, and with it that a sink closed on some of it. The sinks stay attached,
   * and one that failed stays failed (it applies nothing more until it is deployed again).
   */
  reset(): void {
    for (let i = this.faults.length - 1; i >= 0; i--) if (this.faults[i].kind === 'gone') this.faults.splice(i, 1);
    this.lost = false;
    this.release();
  }

  private settle(shard: string, q: Entry[]): void {
    let applied: unknown = undefined;
    while (q.length > 0 && q[0].done) {
      const e = q.shift() as Entry;
      if (e.position !== null) applied = e.position;
    }
    if (applied !== undefined && !this.lost) this.onApplied?.(shard, applied);
  }

  private release(): void {
    this.inFlight = 0;
    this.queues.clear();
    this.shardOf.clear();
    this.notify();
    for (const w of this.waiters.splice(0)) w();
  }

  private notify(): void {
    const change = this.change;
    this.change = null;
    change?.resolve();
  }
}
