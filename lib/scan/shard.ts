import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import Redis from 'ioredis';
import { hashTagForSlot } from '../cluster/slots';
import { toSocketOptions, type EndpointConfig } from '../endpoint';
import type { CommandOp, KeyOp, Operation } from '../ops/operation';
import { parseScore, valueKindOf } from '../rdb/parser';
import { RdbType } from '../rdb/types';
import { rdbVersionOfServer } from '../rdb/versions';
import { ReplicationError } from '../replication/errors';
import type { ReplPosition } from '../replication/link';
import type { SyncMode } from '../replication/session';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import { parseInfo } from '../server/info';
import { NodeConnection } from '../sink/connection';
import { SinkError } from '../sink/errors';
import { KEYSPACE_PATTERN, keyspaceEventsRemedy, missingKeyspaceEvents, parseKeyspaceChannel, withKeyspaceEvents } from './keyspace-events';

export type ScanPhase = 'connecting' | 'snapshot' | 'rescan' | 'streaming' | 'reconnecting' | 'done' | 'failed' | 'stopped';

export interface ScanShardOptions {
  /** The shard's name in operations and positions (see shardKey). */
  shard: string;
  /** A slot the shard serves: the probe key (see checkNotifications) must hash to it. */
  slot: number;
  /** Where the shard's master is; asked before every (re)connect, so a failover is followed. */
  locate: () => Promise<{ host: string; port: number }>;
  endpoint: EndpointConfig;
  mode: SyncMode;
  /** The sync this shard continues (what was saved), or null: a new full copy, a new epoch. */
  resume: ReplPosition | null;
  /** A key whose MEMORY USAGE is above this is read in parts and emitted as chunks. */
  bigKeyBytes: number;
  /** Keys per SCAN call and per pipelined read. */
  scanCount: number;
  /** Where notify-keyspace-events lacks flags and CONFIG is allowed, set them instead of failing. */
  setKeyspaceEvents: boolean;
  /** Receives the batches in order; the next read waits until the promise settles (the backpressure). */
  onBatch: (ops: Operation[], position: ReplPosition) => Promise<void>;
}

export interface ScanShardProgress {
  shard: string;
  phase: ScanPhase;
  node: string | null;
  /** Keys read by the current (or last) pass over the keyspace, and the count INFO keyspace gave at its start. */
  scanned: number;
  expectedKeys: number | null;
  /** Notified keys not read yet, and how long the oldest has waited (0 when none). */
  pending: number;
  lagMs: number;
  /** Passes over the whole keyspace after the first: restarts, lost subscriptions. */
  rescans: number;
  reconnects: number;
  lastError: string | null;
}

/** Notified keys waiting to be read, past which they are dropped for a rescan of everything (memory stays bounded). */
const PENDING_LIMIT = 200_000;
/** Keys of the scan source's own: the probe key that checks notifications arrive (see checkNotifications). */
const PROBE_PREFIX = 'redis-sync:notify-probe:';
const PROBE_BYTES = Buffer.from(PROBE_PREFIX);
/** How long a probe key's notification may take before notifications count as off. */
const PROBE_WAIT_MS = 2000;
const REPLACE = Buffer.from('REPLACE');
const ABSTTL = Buffer.from('ABSTTL');
/** Elements per HSCAN/SSCAN/ZSCAN/LRANGE call of a big key. */
const PART_COUNT = 1000;

type Pending = { db: number; key: Buffer; at: number };

/** A live subscription ended (connection closed, killed): everything is read again (see run). */
class SubscriptionLost extends Error {}

/**
 * Copies one master (a standalone server or a cluster shard) without replication rights:
 * subscribes to its keyspace notifications, then SCANs every db and reads each key with
 * DUMP + PTTL (big keys in parts), then reads every notified key again. One connection
 * reads, in order, so that a key read later is handed on later: the destination ends with
 * the latest value. Emits 'phase', 'retry' (error, delayMs), 'rescan' (reason), 'warning'
 * (text) and 'end' (error | null) once.
 */
export class ScanShard extends EventEmitter {
  phase: ScanPhase = 'connecting';
  reconnects = 0;
  rescans = 0;
  lastError: ReplicationError | null = null;
  private readonly opts: ScanShardOptions;
  private conn: NodeConnection | null = null;
  private subscriber: Redis | null = null;
  private node: string | null = null;
  private replid: string;
  private epochOffset = 0;
  private offset: number;
  /** The first pass of a new epoch is the snapshot (key operations inside snapshot-begin … end); every later pass a rescan (commands). */
  private snapshotDone: boolean;
  private readonly pending = new Map<string, Pending>();
  private lost = false;
  /** Why reconnect() was called, until the retry that follows it names it. */
  private movedReason: string | null = null;
  private stopping = false;
  private ended = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | null = null;
  private scanned = 0;
  private expectedKeys: number | null = null;
  private rdbVersion = 9;
  /** MEMORY USAGE answered: big keys can be told before they are read. */
  private memoryUsage = true;
  private probeSeen: (() => void) | null = null;
  private out: Operation[] = [];
  private outBytes = 0;

  constructor(opts: ScanShardOptions) {
    super();
    this.opts = opts;
    const resume = opts.mode === 'full+incremental' ? opts.resume : null;
    this.replid = resume?.replid ?? randomBytes(20).toString('hex');
    this.offset = resume?.offset ?? 0;
    this.snapshotDone = resume !== null;
  }

  start(): void {
    this.loop = this.run();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wake?.();
      this.closeConnections();
      await this.loop;
      this.finish(null, 'stopped');
    })();
    return this.stopped;
  }

  /** The master moved (a failover): reads from the new one, after a rescan. */
  reconnect(reason: string): void {
    if (this.stopping || this.ended) return;
    this.movedReason = reason;
    this.closeConnections();
    this.wake?.();
  }

  get progress(): ScanShardProgress {
    const oldest = this.pending.values().next();
    return {
      shard: this.opts.shard,
      phase: this.phase,
      node: this.node,
      scanned: this.scanned,
      expectedKeys: this.expectedKeys,
      pending: this.pending.size,
      lagMs: oldest.done ? 0 : Date.now() - oldest.value.at,
      rescans: this.rescans,
      reconnects: this.reconnects,
      lastError: this.lastError?.message ?? null,
    };
  }

  private setPhase(p: ScanPhase): void {
    if (this.phase === p) return;
    this.phase = p;
    this.emit('phase', p);
  }

  private finish(err: ReplicationError | null, phase: ScanPhase): void {
    if (this.ended) return;
    this.ended = true;
    this.setPhase(phase);
    this.emit('end', err);
  }

  private closeConnections(): void {
    this.conn?.close();
    this.conn = null;
    const sub = this.subscriber;
    this.subscriber = null;
    sub?.disconnect();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let delay = 500;
    let rescanReason: string | null = this.snapshotDone && this.opts.mode !== 'incremental' ? 'the node restarted: writes made while it was stopped were not notified' : null;
    while (!this.stopping) {
      try {
        const at = await this.opts.locate();
        this.node = `${at.host}:${at.port}`;
        await this.open(at.host, at.port);
        if (this.opts.mode !== 'full') {
          await this.subscribe(at.host, at.port);
          await this.checkNotifications();
        }
        delay = 500;
        if (this.opts.mode !== 'incremental' && (!this.snapshotDone || rescanReason !== null || this.opts.mode === 'full')) {
          if (this.snapshotDone) {
            this.rescans++;
            this.emit('rescan', rescanReason);
          }
          await this.pass();
          rescanReason = null;
        }
        if (this.opts.mode === 'full') {
          this.closeConnections();
          this.finish(null, 'done');
          return;
        }
        this.setPhase('streaming');
        await this.follow();
      } catch (err) {
        if (this.stopping) return;
        const e = asReplicationError(err, this.node ?? this.opts.shard);
        this.lastError = e;
        this.closeConnections();
        if (!e.retryable) {
          this.finish(e, 'failed');
          return;
        }
        // Whatever was notified while no subscription stood is unknown: every key is read again.
        if (this.opts.mode !== 'full' && this.snapshotDone) {
          if (this.movedReason !== null) rescanReason = this.movedReason;
          else rescanReason = err instanceof SubscriptionLost ? `the keyspace notifications of ${this.node} were lost (${e.message})` : `the connection to ${this.node} was lost (${e.message})`;
        }
        this.movedReason = null;
        this.reconnects++;
        this.setPhase('reconnecting');
        this.emit('retry', e, delay);
        await this.sleep(delay);
        delay = Math.min(30_000, delay * 2);
      }
    }
  }

  private async open(host: string, port: number): Promise<void> {
    const so = toSocketOptions(this.opts.endpoint, host, port);
    const conn = new NodeConnection({ host, port, tls: so.tls ? so.connect : null, username: so.auth?.username, password: so.auth?.password, connectTimeoutMs: so.connectTimeoutMs });
    this.conn = conn;
    await conn.connect();
    const info = await conn.call(['INFO']);
    if (info instanceof RespError) throw new ReplicationError(info.code === 'NOPERM' ? 'NOPERM' : 'REFUSED', `${host}:${port} refuses INFO: ${info.message}`);
    const fields = parseInfo(String(info));
    const [major, minor] = (fields.redis_version ?? '5.0.0').split('.').map(Number);
    this.rdbVersion = rdbVersionOfServer([major, minor]);
  }

  private async subscribe(host: string, port: number): Promise<void> {
    this.lost = false;
    const so = toSocketOptions(this.opts.endpoint, host, port);
    const sub = new Redis({
      host,
      port,
      username: so.auth?.username,
      password: so.auth?.password,
      tls: so.tls ? so.connect : undefined,
      connectTimeout: so.connectTimeoutMs,
      lazyConnect: true,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    let reason: Error | null = null;
    sub.on('error', (err: Error) => (reason = err));
    sub.on('close', () => {
      if (this.subscriber !== sub) return;
      this.lost = true;
      this.wake?.();
    });
    sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer) => this.notified(channel));
    this.subscriber = sub;
    try {
      await sub.connect();
      await sub.psubscribe(KEYSPACE_PATTERN);
    } catch (err) {
      throw reason ?? err;
    }
  }

  private notified(channel: Buffer): void {
    const at = parseKeyspaceChannel(channel);
    if (at === null) return;
    if (at.key.length >= PROBE_BYTES.length && at.key.subarray(0, PROBE_BYTES.length).equals(PROBE_BYTES)) {
      this.probeSeen?.();
      return;
    }
    // one entry per key: a burst of writes to it is one read, at the first write's place in line
    const id = `${at.db}:${at.key.toString('latin1')}`;
    if (!this.pending.has(id)) this.pending.set(id, { db: at.db, key: Buffer.from(at.key), at: Date.now() });
    this.wake?.();
  }

  /**
   * notify-keyspace-events must hold K and every class: read with CONFIG GET (and set, where
   * the user allows it); where CONFIG is refused (managed services rename it), a probe key of
   * the scan source's own, written with a short TTL, must be notified.
   */
  private async checkNotifications(): Promise<void> {
    const conn = this.conn as NodeConnection;
    const r = await conn.call(['CONFIG', 'GET', 'notify-keyspace-events']);
    if (Array.isArray(r) && r.length >= 2) {
      const current = String(r[1]);
      if (missingKeyspaceEvents(current) === '') return;
      if (this.opts.setKeyspaceEvents) {
        const set = await conn.call(['CONFIG', 'SET', 'notify-keyspace-events', withKeyspaceEvents(current)]);
        if (!(set instanceof RespError)) {
          this.emit('warning', `${this.node}: notify-keyspace-events was "${current}", set to "${withKeyspaceEvents(current)}" (only until the server restarts, unless its redis.conf says so too)`);
          return;
        }
        throw new ReplicationError('NOTIFY', `${this.node}: notify-keyspace-events is "${current}" and CONFIG SET refused to change it (${set.message}): ${keyspaceEventsRemedy(current)}`);
      }
      throw new ReplicationError('NOTIFY', `${this.node}: notify-keyspace-events is "${current}", so writes are not notified: ${keyspaceEventsRemedy(current)}, or tick "set notify-keyspace-events" in the scan source`);
    }
    const probe = Buffer.from(`${PROBE_PREFIX}{${hashTagForSlot(this.opts.slot)}}:${this.replid}`);
    const seen = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), PROBE_WAIT_MS);
      this.probeSeen = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
    const written = await conn.call(['SET', probe, '1', 'PX', '10000']);
    if (written instanceof RespError) {
      this.probeSeen = null;
      this.emit('warning', `${this.node}: whether keyspace notifications are on cannot be checked (CONFIG GET: ${r instanceof RespError ? r.message : 'no answer'}; a probe key: ${written.message}); the scan source needs notify-keyspace-events "${withKeyspaceEvents('')}"`);
      return;
    }
    const ok = await seen;
    this.probeSeen = null;
    if (!ok) throw new ReplicationError('NOTIFY', `${this.node}: keyspace notifications are off (a probe key written was not notified within ${PROBE_WAIT_MS} ms, and CONFIG is not available to read them): ${keyspaceEventsRemedy(null)}`);
  }

  /** One pass over every key of the master, every db: the snapshot of a new epoch, else a rescan. */
  private async pass(): Promise<void> {
    const conn = this.conn as NodeConnection;
    const snapshot = !this.snapshotDone;
    this.setPhase(snapshot ? 'snapshot' : 'rescan');
    const info = parseInfo(String(await conn.call(['INFO', 'keyspace'])));
    const dbs = Object.keys(info).filter((f) => /^db\d+$/.test(f)).map((f) => Number(f.slice(2))).sort((a, b) => a - b);
    this.expectedKeys = dbs.reduce((n, db) => n + Number(/keys=(\d+)/.exec(info[`db${db}`])?.[1] ?? 0), 0);
    this.scanned = 0;
    if (snapshot) this.push({ kind: 'snapshot-begin', shard: this.opts.shard, replid: this.replid, offset: this.epochOffset });
    for (const db of dbs) {
      let cursor = '0';
      do {
        // notified keys first: the live lag stays short while a big keyspace is scanned
        await this.readPending();
        this.checkSubscription();
        conn.send(['SELECT', db]);
        const reply = (await conn.call(['SCAN', cursor, 'COUNT', this.opts.scanCount])) as RespValue;
        if (reply instanceof RespError) throw new ReplicationError(reply.code === 'NOPERM' ? 'NOPERM' : 'REFUSED', `${this.node} refuses SCAN: ${reply.message}`);
        const [next, keys] = reply as [Buffer, Buffer[]];
        cursor = String(next);
        const own = keys.filter((k) => !(k.length >= PROBE_BYTES.length && k.subarray(0, PROBE_BYTES.length).equals(PROBE_BYTES)));
        await this.read(own.map((key) => ({ db, key })), snapshot);
        this.scanned += own.length;
        await this.handOn();
        if (this.stopping) return;
      } while (cursor !== '0');
    }
    if (snapshot) {
      this.push({ kind: 'snapshot-end', shard: this.opts.shard, replid: this.replid, offset: this.epochOffset, keys: this.scanned, emptyKeysSkipped: 0 });
      await this.handOn();
      this.snapshotDone = true;
    }
  }

  /** Reads every notified key as it comes, until the subscription is lost or the shard stops. */
  private async follow(): Promise<void> {
    while (!this.stopping) {
      if (this.movedReason !== null) throw new SubscriptionLost(this.movedReason);
      this.checkSubscription();
      if (this.pending.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      await this.readPending();
    }
  }

  private checkSubscription(): void {
    if (this.lost) throw new SubscriptionLost(`${this.node}: the notification connection closed`);
    if (this.pending.size > PENDING_LIMIT) {
      // more distinct keys changed than are worth remembering: a rescan reads them all anyway
      this.pending.clear();
      throw new SubscriptionLost(`${this.node}: more than ${PENDING_LIMIT} notified keys waited to be read`);
    }
  }

  private async readPending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch: Pending[] = [];
    for (const [id, p] of this.pending) {
      batch.push(p);
      this.pending.delete(id);
      if (batch.length >= this.opts.scanCount) break;
    }
    try {
      await this.read(batch, false);
    } catch (err) {
      // not read: still to be read after the reconnect (which rescans anyway)
      for (const p of batch) this.pending.set(`${p.db}:${p.key.toString('latin1')}`, p);
      throw err;
    }
    await this.handOn();
  }

  /**
   * Reads keys (grouped by db) and queues what they hold: MEMORY USAGE first, so that big keys
   * are read in parts; DUMP + PTTL of the others in one pipeline. A key gone by then is a DEL,
   * except in the snapshot (the destination holds nothing of it yet).
   */
  private async read(keys: Array<{ db: number; key: Buffer }>, snapshot: boolean): Promise<void> {
    if (keys.length === 0) return;
    const conn = this.conn as NodeConnection;
    const byDb = new Map<number, Buffer[]>();
    for (const k of keys) {
      let list = byDb.get(k.db);
      if (!list) byDb.set(k.db, (list = []));
      list.push(k.key);
    }
    for (const [db, list] of byDb) {
      conn.send(['SELECT', db]);
      const sizes: Array<number | null> = new Array<number | null>(list.length).fill(0);
      if (this.memoryUsage) {
        list.forEach((key, i) => conn.send(['MEMORY', 'USAGE', key], (r) => (sizes[i] = r instanceof RespError ? this.noMemoryUsage(r) : r === null ? null : Number(r))));
        await this.replied();
      }
      const dumps: Array<RespValue> = new Array<RespValue>(list.length).fill(null);
      const ttls: number[] = new Array<number>(list.length).fill(-2);
      const big: Buffer[] = [];
      list.forEach((key, i) => {
        const size = sizes[i];
        if (size === null) return;
        if (size > this.opts.bigKeyBytes) {
          big.push(key);
          return;
        }
        conn.send(['DUMP', key], (r) => (dumps[i] = r));
        conn.send(['PTTL', key], (r) => (ttls[i] = Number(r)));
      });
      await this.replied();
      const now = Date.now();
      list.forEach((key, i) => {
        const dump = dumps[i];
        if (sizes[i] !== null && sizes[i] > this.opts.bigKeyBytes) return;
        if (dump instanceof RespError) throw new ReplicationError(dump.code === 'NOPERM' ? 'NOPERM' : 'REFUSED', `${this.node} refuses DUMP: ${dump.message}`);
        if (!Buffer.isBuffer(dump) || ttls[i] === -2) {
          if (!snapshot) this.push(this.command(db, 'DEL', [key]));
          return;
        }
        const expireMs = ttls[i] >= 0 ? now + ttls[i] : null;
        this.push(snapshot ? this.dumpKeyOp(db, key, dump, expireMs) : this.restoreOp(db, key, dump, expireMs));
      });
      for (const key of big) {
        await this.handOn();
        await this.readBig(db, key, snapshot);
      }
    }
  }

  private noMemoryUsage(r: RespError): number {
    // renamed or refused: every key is read whole (a big key then costs its size in memory once)
    this.memoryUsage = false;
    this.emit('warning', `${this.node}: MEMORY USAGE is refused (${r.message}): big keys cannot be told before they are read, so each is read whole`);
    return 0;
  }

  private async replied(): Promise<void> {
    const conn = this.conn as NodeConnection;
    await conn.replied();
    const failure = conn.takeFailures()[0];
    if (failure) throw new ReplicationError('REFUSED', `${this.node}: ${failure.error.message}`);
  }

  /** A key above the big-key threshold, read in parts (HSCAN, SSCAN, ZSCAN, LRANGE, GETRANGE) and queued as chunks. */
  private async readBig(db: number, key: Buffer, snapshot: boolean): Promise<void> {
    const conn = this.conn as NodeConnection;
    conn.send(['SELECT', db]);
    const type = String(await conn.call(['TYPE', key]));
    if (type === 'none') {
      if (!snapshot) this.push(this.command(db, 'DEL', [key]));
      return;
    }
    let index = 0;
    let items: Buffer[] = [];
    let bytes = 0;
    const emit = async (last: boolean): Promise<void> => {
      let expireMs: number | null = null;
      if (last) {
        const ttl = Number(await conn.call(['PTTL', key]));
        expireMs = ttl >= 0 ? Date.now() + ttl : null;
      }
      this.push(this.chunkOp(db, key, type, items, index++, last, expireMs));
      items = [];
      bytes = 0;
      await this.handOn();
    };
    const add = async (elements: Buffer[]): Promise<void> => {
      for (const e of elements) {
        items.push(e);
        bytes += e.length;
      }
      if (bytes >= this.opts.bigKeyBytes) await emit(false);
    };
    if (type === 'hash' || type === 'set' || type === 'zset') {
      const command = type === 'hash' ? 'HSCAN' : type === 'set' ? 'SSCAN' : 'ZSCAN';
      let cursor = '0';
      do {
        const [next, elements] = (await conn.call([command, key, cursor, 'COUNT', PART_COUNT])) as [Buffer, Buffer[]];
        cursor = String(next);
        await add(elements);
      } while (cursor !== '0');
    } else if (type === 'list') {
      for (let start = 0; ; start += PART_COUNT) {
        const elements = (await conn.call(['LRANGE', key, start, start + PART_COUNT - 1])) as Buffer[];
        await add(elements);
        if (elements.length < PART_COUNT) break;
      }
    } else if (type === 'string') {
      for (let start = 0; ; start += this.opts.bigKeyBytes) {
        const part = (await conn.call(['GETRANGE', key, start, start + this.opts.bigKeyBytes - 1])) as Buffer;
        if (part.length > 0) await add([part]);
        if (part.length < this.opts.bigKeyBytes) break;
      }
    } else {
      // a stream's groups and pending entries, a module's value: only DUMP has them whole
      const dump = await conn.call(['DUMP', key]);
      const ttl = Number(await conn.call(['PTTL', key]));
      if (!Buffer.isBuffer(dump)) {
        if (!snapshot) this.push(this.command(db, 'DEL', [key]));
        return;
      }
      const expireMs = ttl >= 0 ? Date.now() + ttl : null;
      this.push(snapshot ? this.dumpKeyOp(db, key, dump, expireMs) : this.restoreOp(db, key, dump, expireMs));
      return;
    }
    await emit(true);
  }

  private push(op: Operation): void {
    this.out.push(op);
    this.outBytes += op.kind === 'key' ? op.key.length + (op.raw?.length ?? 0) + 64 : op.kind === 'command' ? op.args.reduce((n, a) => n + a.length, 64) : 64;
  }

  private async handOn(): Promise<void> {
    if (this.out.length === 0) return;
    const ops = this.out;
    this.out = [];
    this.outBytes = 0;
    await this.opts.onBatch(ops, { replid: this.replid, offset: this.offset });
  }

  private command(db: number, name: string, args: Buffer[]): CommandOp {
    return { kind: 'command', db, name, args, keys: [0], shard: this.opts.shard, offset: ++this.offset, tx: 0 };
  }

  /** A key read after the snapshot: RESTORE … REPLACE, which overwrites whatever the destination holds (also under "skip existing"). */
  private restoreOp(db: number, key: Buffer, dump: Buffer, expireMs: number | null): CommandOp {
    const args = [key, Buffer.from(String(expireMs ?? 0)), dump, REPLACE];
    if (expireMs !== null) args.push(ABSTTL);
    return this.command(db, 'RESTORE', args);
  }

  /** A snapshot key as the RDB path emits it: the DUMP payload split into type byte, serialized value and RDB version. */
  private dumpKeyOp(db: number, key: Buffer, dump: Buffer, expireMs: number | null): KeyOp {
    const rdbType = dump[0];
    return {
      kind: 'key',
      db,
      key,
      type: valueKindOf(rdbType) ?? 'module',
      value: null,
      rdbType,
      expireMs,
      idleSeconds: null,
      lfuFreq: null,
      raw: dump.subarray(1, dump.length - 10),
      chunk: null,
      offset: this.snapshotDone ? this.offset : this.epochOffset,
      shard: this.opts.shard,
      rdbVersion: dump.readUInt16LE(dump.length - 10),
    };
  }

  private chunkOp(db: number, key: Buffer, type: string, items: Buffer[], index: number, last: boolean, expireMs: number | null): KeyOp {
    const base = { kind: 'key' as const, db, key, expireMs, idleSeconds: null, lfuFreq: null, raw: null, chunk: { index, last }, offset: this.snapshotDone ? this.offset : this.epochOffset, shard: this.opts.shard, rdbVersion: this.rdbVersion };
    switch (type) {
      case 'hash':
        return { ...base, type: 'hash', rdbType: RdbType.HASH, value: pairs(items), fieldExpires: [] };
      case 'zset':
        return { ...base, type: 'zset', rdbType: RdbType.ZSET_2, value: pairs(items).map(([m, s]) => [m, parseScore(s, 0)] as [Buffer, number]) };
      case 'set':
        return { ...base, type: 'set', rdbType: RdbType.SET, value: items };
      case 'list':
        return { ...base, type: 'list', rdbType: RdbType.LIST, value: items };
      default:
        return { ...base, type: 'string', rdbType: RdbType.STRING, value: Buffer.concat(items) };
    }
  }
}

function pairs(flat: Buffer[]): Array<[Buffer, Buffer]> {
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** Any failure as a ReplicationError: connection faults are retried, refusals (auth, permissions, settings) stop the shard. */
function asReplicationError(err: unknown, at: string): ReplicationError {
  if (err instanceof ReplicationError) return err;
  if (err instanceof SubscriptionLost) return new ReplicationError('CLOSED', err.message);
  if (err instanceof SinkError) {
    const message = err.message.replace('the destination endpoint', 'the source endpoint');
    if (err.code === 'AUTH') return new ReplicationError('AUTH', message, { cause: err });
    if (err.code === 'LOADING') return new ReplicationError('LOADING', message, { cause: err });
    if (err.code === 'TLS' || err.code === 'TLS_REQUIRED') return new ReplicationError(err.code, message, { cause: err });
    if (err.code === 'REFUSED') return new ReplicationError('REFUSED', message, { cause: err });
    return new ReplicationError('CONNECT', message, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/WRONGPASS|NOAUTH/.test(message)) return new ReplicationError('AUTH', `${at}: ${message} (check the username and password of the source endpoint)`, { cause: err });
  if (/NOPERM/.test(message)) return new ReplicationError('NOPERM', `${at}: ${message}`, { cause: err });
  return new ReplicationError('CLOSED', `${at}: ${message}`, { cause: err });
}
