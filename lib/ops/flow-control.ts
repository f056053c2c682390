/**
 * Credit-based flow control between a source node and the sinks its batches reach, across
 * Node-RED's wires (which have none). A source may have `window` batches in flight; a
 * sink acknowledges each batch once applied. Sources and sinks meet in this process-wide
 * registry by the source node's id, which every batch carries (msg.redisSync.source).
 * With no sink attached (a flow that ends in a debug node, say) nothing waits.
 */
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

  window = 8;
  private inFlight = 0;
  private readonly sinks = new Set<string>();
  private waiters: Array<() => void> = [];

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

  /** Call before sending a batch: resolves when the window has room (at once with no sink). */
  async acquire(): Promise<void> {
    if (this.sinks.size === 0) return; // nobody acknowledges: counting would only block later
    while (this.sinks.size > 0 && this.inFlight >= this.window) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.inFlight++;
  }

  /** A sink applied a batch. */
  ack(): void {
    if (this.inFlight > 0) this.inFlight--;
    this.waiters.shift()?.();
  }

  private release(): void {
    this.inFlight = 0;
    for (const w of this.waiters.splice(0)) w();
  }
}
