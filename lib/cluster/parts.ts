import { FlowControl } from '../ops/flow-control';

/**
 * What msg.redisSync holds on a message of the slot router. The router sends each batch of a
 * source as `parts` messages, one per partition (output), some with no operations, and the
 * source counts on one acknowledgement per batch (FlowControl.ack(seq)).
 */
export interface PartInfo {
  /** From the source: its node id, the source shard, the batch's sequence number. */
  source?: string;
  shard?: string;
  seq?: number;
  /** Names the batch among everything sent in this process (router id and a counter). */
  batch?: string;
  /** The output (0-based) this message left the router by; `part` is the same number. */
  partition?: number;
  part?: number;
  /** How many messages the batch became: it is applied once all of them are. */
  parts?: number;
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
export function acknowledgePart(info: PartInfo | undefined): void {
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
