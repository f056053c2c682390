/**
 * msg.redisSync: where a batch of operations comes from and, behind a slot router, which part
 * of it a message is. The source sets `source`, `shard` and `seq`; the slot router adds the
 * rest (lib/cluster/partition-barrier.ts). A sink acknowledges batch `seq` to `source` once all
 * `parts` messages of `batch` are applied; a message without `source` is acknowledged to nobody
 * (the op filter's second output). Users' function nodes pass it on unchanged.
 */
export interface RedisSyncInfo {
  /** The source node's id: its flow control (lib/ops/flow-control.ts) is found by it. */
  source?: string;
  /** The source shard, named by its slots (`slots:0-5460`) or `standalone`. */
  shard?: string;
  /** The batch's sequence number in its source's flow control. */
  seq?: number;
  /** Names the batch among everything routed in this process (router id and a counter). */
  batch?: string;
  /** The router output (0-based) this message left by; `part` is the same number. */
  partition?: number;
  part?: number;
  /** How many messages the batch became: it is applied once all of them are. */
  parts?: number;
}

