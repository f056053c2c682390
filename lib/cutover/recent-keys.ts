import type { Operation } from '../ops/operation';

/** A key a command of the stream wrote, and when the tap saw it last. */
export interface RecentKey {
  db: number;
  key: Buffer;
  at: number;
}

/**
 * The keys the replication stream wrote lately, as a cutover checks them: the most recently
 * written `maxKeys`, oldest dropped first, so memory stays bounded whatever the write rate.
 * Only stream commands count: the snapshot's keys were written before the stream began.
 */
export class RecentKeys {
  /** By db and key, in the order they were last written (a Map iterates in insertion order). */
  private readonly keys = new Map<string, RecentKey>();

  constructor(readonly maxKeys = 10_000) {}

  get size(): number {
    return this.keys.size;
  }

  note(ops: readonly Operation[], now = Date.now()): void {
    for (const op of ops) {
      if (op.kind !== 'command') continue;
      for (const i of op.keys) {
        const key = op.args[i];
        if (key === undefined) continue;
        const id = `${op.db}:${key.toString('latin1')}`;
        this.keys.delete(id);
        this.keys.set(id, { db: op.db, key, at: now });
      }
    }
    for (const id of this.keys.keys()) {
      if (this.keys.size <= this.maxKeys) break;
      this.keys.delete(id);
    }
  }

  /** The keys written within the last `windowMs`, oldest first. */
  since(windowMs: number, now = Date.now()): RecentKey[] {
    return this.writtenSince(now - windowMs);
  }

  /** The keys the tap saw written at `time` or later, oldest first. */
  writtenSince(time: number): RecentKey[] {
    const out: RecentKey[] = [];
    for (const k of this.keys.values()) if (k.at >= time) out.push(k);
    return out;
  }
}
