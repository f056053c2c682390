/**
 * Credit-based flow control between a source node and the sinks its batches reach, across
 * Node-RED's wires (which have none). A source may have `window` batches in flight; a sink
 * acknowledges each batch (by its `seq`) once applied, and the source learns, per shard,
 * the position up to which everything is applied: what it may save as its resume point.
 * Sources and sinks meet in this process-wide registry by the source node's id, which
 * every batch carries (msg.redisSync.source). With no sink attached nothing waits.
 */
/** Batches counted while no sink has ever acknowledged one, before the count is dropped. */
const UNACKNOWLEDGED_LIMIT = 1000;

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
  private readonly queues = new Map<string, Array<{ seq: number; position: unknown; done: boolean }>>();
  private readonly shardOf = new Map<number, string>();

  /** Batches sent and not yet acknowledged. */
  get pending(): number {
    return this.inFlight;
  }

  get attached(): boolean {
    return this.sinks.size > 0;
  }

  /** A sink announces that it applies this source's batches (and will acknowledge them). */
  attach(sinkId: string): void {
    this.sinks.add(sinkId);
  }

  detach(sinkId: string): void {
    this.sinks.delete(sinkId);
    if (this.sinks.size === 0) this.release();
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
    return seq;
  }

  /** A sink applied batch `seq`. */
  ack(seq: number): void {
    const shard = this.shardOf.get(seq);
    if (shard === undefined) return;
    this.shardOf.delete(seq);
    if (this.inFlight > 0) this.inFlight--;
    this.waiters.shift()?.();
    const q = this.queues.get(shard) as Array<{ seq: number; position: unknown; done: boolean }>;
    const entry = q.find((e) => e.seq === seq);
    if (entry) entry.done = true;
    let applied: unknown = undefined;
    while (q.length > 0 && q[0].done) {
      const e = q.shift() as { position: unknown };
      if (e.position !== null) applied = e.position;
    }
    if (applied !== undefined) this.onApplied?.(shard, applied);
  }

  private release(): void {
    this.inFlight = 0;
    this.queues.clear();
    this.shardOf.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}
