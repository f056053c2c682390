import { hashTagForSlot, slotOf, slotsOfShard } from '../cluster/slots';
import type { CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import { keyspaceKeys, parseInfo } from '../server/info';
import type { NodeConnection } from './connection';
import { SinkError } from './errors';

const PREFIX = 'redis-sync:ckpt';

/** No offset recorded: below every offset, 0 included (a source that never had a replica starts at 0). */
const NONE = -1;

interface ShardState {
  epoch: string;
  /** The offset of the full sync the epoch names: what every operation of its snapshot carries. */
  snapshotOffset: number | null;
  barrier: number;
  slots: Map<number, number>;
  /** Keys of this source shard were written under names outside its slots (renamed or prefixed on the way). */
  moved: boolean;
}

/**
 * The destination's record of what was applied, per source pipeline and shard: an epoch
 * (which full sync the offsets belong to), the offset of the last barrier (keyless or
 * cross-slot command, applied after everything before it), and per lane the offset of the
 * last guarded group, written in the same MULTI … EXEC as the group. A lane is a run of
 * operations applied in source order: a hash slot of a cluster destination; for a standalone
 * destination, the slot router's output the operations came by (a router splits a batch by
 * slot, so the parts of one batch reach the destination in no common order, and one floor
 * for all of them would count a part's older operations as applied). They live in the
 * destination itself (keys `redis-sync:ckpt…`, db 0), so they are exactly as durable as the
 * data they describe.
 */
export class Checkpoints {
  private readonly state = new Map<string, ShardState>();

  constructor(
    private readonly cluster: boolean,
    nodeFor: (slot: number) => NodeConnection,
    private masters: NodeConnection[],
    /** One command on the master of a slot; the writer's follows MOVED/ASK while a cluster reshards or fails over. */
    private readonly call: (slot: number, args: CommandArg[]) => Promise<RespValue> = (slot, args) => nodeFor(slot).call(args),
  ) {}

  setMasters(masters: NodeConnection[]): void {
    this.masters = masters;
  }

  private key(lane: number): string {
    return this.cluster ? `${PREFIX}:{${hashTagForSlot(lane)}}` : PREFIX;
  }

  /** A standalone destination keeps every lane of a pipeline in one hash: a field per lane. */
  private field(id: string, lane: number): string {
    return this.cluster || lane === 0 ? id : `${id}|p${lane}`;
  }

  private globalKey(): string {
    return `${this.key(0)}:global`;
  }

  /** Loads (once) what the destination recorded for this pipeline and shard. */
  async prepare(source: string, shard: string): Promise<void> {
    const id = `${source}|${shard}`;
    if (this.state.has(id)) return;
    const epoch = await this.call(0, ['HGET', this.globalKey(), `${id}|epoch`]);
    const barrier = await this.call(0, ['HGET', this.globalKey(), `${id}|barrier`]);
    const moved = await this.call(0, ['HGET', this.globalKey(), `${id}|moved`]);
    const st: ShardState = { epoch: '', snapshotOffset: null, barrier: NONE, slots: new Map(), moved: moved !== null && !(moved instanceof RespError) };
    if (epoch !== null) setEpoch(st, String(epoch));
    const b = parse(barrier, st.epoch);
    if (b !== null) st.barrier = b;
    if (!this.cluster) {
      const fields = await this.call(0, ['HGETALL', PREFIX]);
      const all = Array.isArray(fields) ? fields.map(String) : [];
      for (let i = 0; i + 1 < all.length; i += 2) {
        const lane = all[i] === id ? 0 : all[i].startsWith(`${id}|p`) ? Number(all[i].slice(id.length + 2)) : NaN;
        const v = parse(all[i + 1], st.epoch);
        if (Number.isInteger(lane) && v !== null) st.slots.set(lane, v);
      }
    }
    for (const m of this.cluster ? this.masters : []) {
      let cursor = '0';
      do {
        const r = (await m.call(['SCAN', cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000])) as [Buffer, Buffer[]];
        cursor = String(r[0]);
        for (const k of r[1]) {
          if (k.toString().endsWith(':global')) continue;
          const v = parse(await this.call(slotOf(k), ['HGET', k, id]), st.epoch);
          if (v !== null) st.slots.set(slotOf(k), v);
        }
      } while (cursor !== '0');
    }
    this.state.set(id, st);
  }

  /** Drops everything `prepare` loaded (after a lost connection, the destination knows better). */
  forgetAll(): void {
    this.state.clear();
  }

  /** Drops what `prepare` loaded: the next operation of the shard reads the destination's record again. */
  forget(source: string, shard: string): void {
    this.state.delete(`${source}|${shard}`);
  }

  /** Whether `prepare` has loaded this pipeline's and shard's record. */
  prepared(source: string, shard: string): boolean {
    return this.state.has(`${source}|${shard}`);
  }

  /** Whether the operation at `offset` in `lane` (SLOT_NONE for a barrier) is already applied. */
  applied(source: string, shard: string, lane: number, offset: number): boolean {
    return this.appliedIn(source, shard)(lane, offset);
  }

  /** `applied` for one pipeline and shard, looked up once for a run of operations. */
  appliedIn(source: string, shard: string): (lane: number, offset: number) => boolean {
    const st = this.state.get(`${source}|${shard}`);
    if (!st) return () => false;
    return (lane, offset) => offset <= st.barrier || offset <= (st.slots.get(lane) ?? NONE);
  }

  /** The command that records a guarded group, to send inside its MULTI … EXEC. */
  writeCommand(source: string, shard: string, lane: number, offset: number): CommandArg[] {
    const id = `${source}|${shard}`;
    return ['HSET', this.key(lane), this.field(id, lane), `${this.state.get(id)?.epoch ?? ''} ${offset}`];
  }

  /** Asks the destination (not the cache) whether `lane` recorded `offset`: after a crash mid-command. */
  async recordedAt(source: string, shard: string, lane: number, offset: number): Promise<boolean> {
    const id = `${source}|${shard}`;
    const v = parse(await this.call(this.cluster ? lane : 0, ['HGET', this.key(lane), this.field(id, lane)]), this.state.get(id)?.epoch ?? '');
    return v !== null && v >= offset;
  }

  /** A guarded group's EXEC succeeded. */
  noteApplied(source: string, shard: string, lane: number, offset: number): void {
    this.state.get(`${source}|${shard}`)?.slots.set(lane, offset);
  }

  async writeBarrier(source: string, shard: string, offset: number): Promise<void> {
    const cmd = this.barrierCommand(source, shard, offset);
    if (cmd === null) return;
    this.noteBarrier(source, shard, offset);
    check(await this.call(0, cmd));
  }

  /** The command that records a barrier (null: nothing to record), for a MULTI of the caller's (then noteBarrier once it ran). */
  private barrierCommand(source: string, shard: string, offset: number): CommandArg[] | null {
    const id = `${source}|${shard}`;
    const st = this.state.get(id);
    if (!st) return null;
    // Every command a snapshot implies (its function libraries, the scripts Redis 4 and 5 keep
    // in it: see ReplicationDecoder) carries the snapshot's offset, so a record at that offset
    // would count those still to come as applied. Like the snapshot's keys they are not
    // recorded: nothing continues from inside a snapshot (ReplicaSession saves positions of the
    // stream only; a snapshot cut short means a new full sync, a new epoch), and applied again
    // after a lost connection they leave the same result (FUNCTION LOAD REPLACE, SCRIPT LOAD).
    if (offset === st.snapshotOffset) return null;
    return ['HSET', this.globalKey(), `${id}|barrier`, `${st.epoch} ${offset}`];
  }

  /** A barrier recorded by the caller's MULTI (rewriteCommands) ran. */
  noteBarrier(source: string, shard: string, offset: number): void {
    const st = this.state.get(`${source}|${shard}`);
    if (st !== undefined && offset !== st.snapshotOffset) st.barrier = offset;
  }

  /**
   * What the destination records beyond the lanes, of every pipeline: epochs, barriers, moved
   * keys (see prepare). Read before a flush that takes it away (see rewriteCommands).
   */
  async record(): Promise<RespValue[]> {
    const r = await this.call(0, ['HGETALL', this.globalKey()]);
    check(r);
    return Array.isArray(r) ? r : [];
  }

  /**
   * The commands, for a MULTI on the master of slot 0 (db 0), that write `record` again (after
   * a flush took it) and the barrier of the command the MULTI runs (null: none recorded).
   */
  rewriteCommands(record: RespValue[] | null, barrier: { source: string; shard: string; offset: number } | null): CommandArg[][] {
    const out: CommandArg[][] = [];
    if (record !== null && record.length > 0) out.push(['HSET', this.globalKey(), ...(record as CommandArg[])]);
    const b = barrier === null ? null : this.barrierCommand(barrier.source, barrier.shard, barrier.offset);
    if (b !== null) out.push(b);
    return out;
  }

  /** The keys of a standalone destination's record, all in db 0 (a SWAPDB must leave them there: see Barriers.swapDbs). */
  standaloneKeys(): string[] {
    return [PREFIX, this.globalKey()];
  }

  /** Whether keys of this source shard went to the destination under names outside its slots (see noteMovedKeys). */
  movedKeys(source: string, shard: string): boolean {
    return this.state.get(`${source}|${shard}`)?.moved === true;
  }

  /**
   * Keys of a cluster source's shard are about to be written under names that hash outside
   * the shard's slots: recorded in the destination before they are written, because a later
   * full sync of the shard can then no longer find its keys by slot (see beginEpoch).
   */
  async noteMovedKeys(source: string, shard: string): Promise<void> {
    const id = `${source}|${shard}`;
    await this.prepare(source, shard);
    const st = this.state.get(id) as ShardState;
    if (st.moved) return;
    check(await this.call(0, ['HSET', this.globalKey(), `${id}|moved`, '1']));
    st.moved = true;
  }

  /** FLUSHALL removed every slot's record; offsets before the flush are covered by its barrier. */
  forgetSlots(): void {
    for (const st of this.state.values()) st.slots.clear();
  }

  /**
   * A full sync of a shard starts. With "precheck and intercept" the destination must be
   * empty the first time; on a later full sync of the same shard (after a link that could
   * not resume) what the earlier one wrote is removed first, or keys deleted at the source
   * in between would survive.
   */
  async beginEpoch(source: string, shard: string, replid: string, offset: number, intercept: boolean): Promise<void> {
    const id = `${source}|${shard}`;
    const epoch = `${replid}:${offset}`;
    await this.prepare(source, shard);
    const st = this.state.get(id) as ShardState;
    if (intercept) {
      // the first full sync of the source must find the destination empty; the shards of a
      // cluster source begin one after the other, into a destination holding the keys of the first
      if (st.epoch === '') {
        if (!(await this.otherShardBegan(source, shard))) await this.assertEmpty();
      } else if (st.epoch !== epoch) {
        if (st.moved && slotsOfShard(shard) !== null) {
          throw new SinkError(
            'NOT_EMPTY',
            `source shard ${shard} needs a new full sync, but its earlier keys were written under other names (renamed or prefixed on the way), so the destination cannot tell them from other shards' keys to remove them: empty the destination and restart the flow, or choose "ignore" (keys deleted at the source meanwhile then stay)`,
          );
        }
        await this.clearShard(shard);
      }
    }
    setEpoch(st, epoch);
    st.barrier = NONE;
    st.slots.clear();
    check(await this.call(0, ['HSET', this.globalKey(), `${id}|epoch`, epoch]));
    check(await this.call(0, ['HDEL', this.globalKey(), `${id}|barrier`]));
  }

  /** Whether another shard of this source pipeline has begun a full sync into this destination. */
  private async otherShardBegan(source: string, shard: string): Promise<boolean> {
    const fields = await this.call(0, ['HKEYS', this.globalKey()]);
    if (!Array.isArray(fields)) return false;
    const own = `${source}|${shard}|epoch`;
    return fields.some((f) => {
      const name = String(f);
      return name !== own && name.startsWith(`${source}|`) && name.endsWith('|epoch');
    });
  }

  private async assertEmpty(): Promise<void> {
    let keys = 0;
    for (const m of this.masters) {
      keys += keyspaceKeys(parseInfo(String(await m.call(['INFO', 'keyspace']))));
      let cursor = '0';
      do {
        const r = (await m.call(['SCAN', cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000])) as [Buffer, Buffer[]];
        cursor = String(r[0]);
        keys -= r[1].length;
      } while (cursor !== '0');
    }
    if (keys > 0) {
      throw new SinkError('NOT_EMPTY', `the destination holds ${keys} keys, but the conflict policy "precheck and intercept" needs it empty: empty it, or choose "ignore" to overwrite keys of the same name`);
    }
  }

  /** Deletes what an earlier full sync of this shard wrote: its slots' keys, or everything for a standalone source. */
  private async clearShard(shard: string): Promise<void> {
    const slots = slotsOfShard(shard);
    if (slots === null) {
      for (const m of this.masters) check(await m.call(['FLUSHALL']));
      this.forgetSlots();
      return;
    }
    for (const m of this.masters) {
      let cursor = '0';
      do {
        const r = (await m.call(['SCAN', cursor, 'COUNT', 1000])) as [Buffer, Buffer[]];
        cursor = String(r[0]);
        const doomed = r[1].filter((k) => slots[slotOf(k)] === 1 && !k.toString('latin1').startsWith(PREFIX));
        for (const k of doomed) check(await m.call(['DEL', k]));
      } while (cursor !== '0');
    }
  }
}

/** An epoch is `<replid>:<offset>` of its full sync (beginEpoch); a replication id holds no colon. */
function setEpoch(st: ShardState, epoch: string): void {
  st.epoch = epoch;
  const offset = /:(\d+)$/.exec(epoch);
  st.snapshotOffset = offset === null ? null : Number(offset[1]);
}

function parse(v: unknown, epoch: string): number | null {
  if (v === null || v === undefined || v instanceof RespError) return null;
  const [e, offset] = String(v).split(' ');
  return e === epoch && /^\d+$/.test(offset ?? '') ? Number(offset) : null;
}

function check(reply: unknown): void {
  if (reply instanceof RespError) throw new SinkError('REPLY', `the destination refused a checkpoint write: ${reply.message}`, reply);
}
