import { FlowControl, type FlowFault } from '../ops/flow-control';
import type { RedisSyncInfo } from '../ops/message';
import type { Operation } from '../ops/operation';
import { partitionOf } from './slots';

/** What the barrier asks of a source's flow control (FlowControl). */
export interface Acknowledgements {
  /** Batches the source sent and no sink acknowledged yet. */
  readonly pending: number;
  /** A sink took a batch of this source (and acknowledges what it applies). */
  readonly attached: boolean;
  /** A sink failed or closed with batches of this source unapplied. */
  readonly fault: FlowFault | null;
  /** Resolves at the next change of any of the above. */
  changed(): Promise<void>;
}

export interface PartitionBarrierOptions {
  /** Names this router's batches among all of the process (its node id). */
  id: string;
  /** Outputs, 1 or more. */
  partitions: number;
  /** The flow control of a source; FlowControl.for by default. */
  flowOf?: (source: string) => Acknowledgements;
  /**
   * Whether a sink will get what the outputs send (wired behind them), asked at each barrier:
   * a deploy may rewire the flow without restarting the router.
   */
  sinkBehind: () => boolean;
  /** A barrier batch starts (true) or ends (false) waiting. */
  onWait?: (waiting: boolean) => void;
}

/** The slot the router gave an operation; negative for the barriers (see PartitionBarrier). */
function slotOfOp(op: Operation): number {
  return op.kind === 'key' || op.kind === 'command' ? (op.slot ?? -1) : -1;
}

/** A promise and its resolve. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** One output's message of a batch: its operations and its msg.redisSync. */
export interface Part {
  payload: Operation[];
  redisSync: RedisSyncInfo;
}

/**
 * The order across the outputs of a slot router, whose sinks apply independently. A batch
 * holding an operation bound to no one slot (keyless, SLOT_CROSS, snapshot markers) is a
 * barrier: it goes whole to the first output (the others get its snapshot-begin, if any) once
 * every batch of its source sent before is applied, and the source's next batch waits until it
 * is applied too. "Applied" is read from the source's flow control: `pending` counts its batches
 * not yet acknowledged, and once that is down to the batches held here, all sent on are. A wait
 * happens only where an acknowledgement will come (see acknowledging), so it never guesses.
 */
export class PartitionBarrier {
  private readonly flowOf: (source: string) => Acknowledgements;
  /** Per source, the handling of its last batch: a source's batches are handled in order. */
  private readonly tails = new Map<string, Promise<void>>();
  /** Per source, batches received and not yet sent on: acquired by the source, so not acknowledged either. */
  private readonly held = new Map<string, number>();
  /** Resolved (and replaced) when a batch arrives or the barrier closes: what a wait checks besides the flow control. */
  private arrival = signal();
  private seq = 0;
  private closed = false;

  constructor(private readonly options: PartitionBarrierOptions) {
    this.flowOf = options.flowOf ?? ((source) => FlowControl.for(source));
  }

  /**
   * Takes a routed batch (every operation with its `slot`) and hands `send` one part per
   * output, once it may go (never after close()); resolves once the batch is done with,
   * which for a barrier batch is once it is applied. Batches of one source are sent in the
   * order they were submitted.
   */
  submit(ops: Operation[], info: RedisSyncInfo | undefined, send: (parts: Part[]) => void): Promise<void> {
    const source = info?.source;
    const key = source ?? '';
    let holding = source !== undefined;
    if (source !== undefined) this.hold(source, 1);
    const release = (): void => {
      if (holding && source !== undefined) this.hold(source, -1);
      holding = false;
    };
    const current = (this.tails.get(key) ?? Promise.resolve())
      .then(() => this.pass(ops, info ?? {}, release, send))
      .finally(release);
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return current;
  }

  /** Ends every wait; nothing more is sent. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private async pass(ops: Operation[], info: RedisSyncInfo, release: () => void, send: (parts: Part[]) => void): Promise<void> {
    const n = this.options.partitions;
    const payloads: Operation[][] = Array.from({ length: n }, () => []);
    const barrier = n > 1 && ops.some((op) => slotOfOp(op) < 0);
    const ordered = barrier && info.source !== undefined;
    if (barrier) {
      payloads[0] = ops;
      // every sink must learn that a full sync begins: each keeps the applied offsets of its
      // slots, which belong to the sync before and must not be compared with the new one's
      // (the sink behind the first output does the rest: see BatchContext.partition)
      const begins = ops.filter((op) => op.kind === 'snapshot-begin');
      for (let i = 1; i < n; i++) payloads[i] = begins;
      if (ordered) await this.settled(info.source as string);
    } else {
      for (const op of ops) payloads[n === 1 ? 0 : partitionOf(slotOfOp(op), n)].push(op);
    }
    if (this.closed) return;
    const batch = `${this.options.id}:${++this.seq}`;
    release();
    send(payloads.map((payload, i) => ({ payload, redisSync: { ...info, batch, partition: i, part: i, parts: n } })));
    if (ordered) await this.settled(info.source as string);
  }

  /** Until every batch of `source` sent on is applied, where a sink will say so (see the file comment). */
  private async settled(source: string): Promise<void> {
    const flow = this.flowOf(source);
    const applied = (): boolean => flow.pending <= (this.held.get(source) ?? 0);
    let waiting = false;
    while (!this.closed && !applied() && this.acknowledging(flow)) {
      if (!waiting) {
        waiting = true;
        this.options.onWait?.(true);
      }
      await Promise.race([flow.changed(), this.arrival.promise]);
    }
    if (waiting) this.options.onWait?.(false);
  }

  /**
   * Whether a sink will acknowledge what was sent on: one took a batch of the source, or one is
   * wired behind the outputs and none failed (a sink that fails before it took any batch never
   * acknowledges one: waiting for it would only pile the stream up here).
   */
  private acknowledging(flow: Acknowledgements): boolean {
    return flow.attached || (flow.fault === null && this.options.sinkBehind());
  }

  private hold(source: string, delta: 1 | -1): void {
    const count = (this.held.get(source) ?? 0) + delta;
    if (count > 0) this.held.set(source, count);
    else this.held.delete(source);
    // one more held makes a wait's condition true sooner
    if (delta > 0) this.wake();
  }

  private wake(): void {
    const woken = this.arrival;
    this.arrival = signal();
    woken.resolve();
  }
}

/** Parts still to be applied, by source and batch, across every sink node of the process. */
const remaining = new Map<string, number>();

/**
 * For a sink, once per message it applied, instead of FlowControl.ack(): acknowledges the
 * batch to its source when this was the last of its `parts` (at once for a message that is a
 * whole batch). The count is process-wide because the parts of one batch usually reach
 * different sink nodes, one per partition: a count kept by each sink node would never
 * complete, and acknowledging every part would let the source save a position that some
 * partition has not applied yet.
 */
export function acknowledgePart(info: RedisSyncInfo | undefined): void {
  if (info?.source === undefined || info.seq === undefined) return;
  if (info.parts !== undefined && info.parts > 1) {
    const id = `${info.source}|${info.batch ?? info.seq}`;
    const left = (remaining.get(id) ?? info.parts) - 1;
    if (left > 0) {
      remaining.set(id, left);
      return;
    }
    remaining.delete(id);
  }
  FlowControl.for(info.source).ack(info.seq);
}
