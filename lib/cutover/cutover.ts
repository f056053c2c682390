import type Redis from 'ioredis';
import { discoverTopology } from '../cluster/topology';
import { connectNode, type EndpointConfig } from '../endpoint';
import { SyncError } from '../errors';
import { shardKey, type SourceProgress } from '../replication/source';
import { parseInfo } from '../server/info';
import { compareKeys, VerifySide, type DbKey, type KeyDifference } from '../verify';
import type { RecentKeys } from './recent-keys';

/** What a cutover needs of the running replica source whose stream the sinks apply. */
export interface CutoverSource {
  endpoint: EndpointConfig;
  /** Its progress now; null while it does not run. */
  progress(): SourceProgress | null;
  /** Why its stream is not being applied to a destination now (no sink, a sink failed or closed); null when it is. */
  notApplied(): string | null;
}

export interface CutoverOptions {
  source: CutoverSource;
  destination: EndpointConfig;
  recentKeys: RecentKeys;
  /** The longest writes stay paused waiting for the destination and the key check; also the pause's own timeout on the source. */
  timeoutMs: number;
  /** How long writes stay paused after "switch now" (0: resumed at once); release() ends it early. */
  holdMs: number;
  /** Keys written within this long before the check are compared. */
  windowMs: number;
  ttlToleranceMs: number;
  /** The user stopped every writer: a source before 6.2 (no write pause) is then drained and checked without a pause. */
  writesStopped: boolean;
  onStep?: (step: 'prechecking' | 'pausing' | 'draining' | 'checking', detail: { behindBytes?: number; keys?: number }) => void;
}

export interface ShardFigures {
  shard: string;
  master: string;
  /** The master's replication offset once writes were paused (or stopped). */
  offset: number;
  /** What the sinks had applied of it then. */
  appliedAtPause: number | null;
}

export interface CutoverReport {
  /** Writes were paused on every master (false: the user stopped them, on a source before 6.2). */
  writesPaused: boolean;
  /** From the pause to "switch now": how long writes waited. */
  pauseMs: number;
  /** Of that, waiting for the destination to apply everything, and comparing keys. */
  drainMs: number;
  checkMs: number;
  /** Keys of the window proven equal: compared before the pause, and again during it where they differed or were written since. */
  keysChecked: number;
  keysCheckedPaused: number;
  /** The comparison before the pause, while writes went on. */
  precheckMs: number;
  /** How far behind the destination was when writes stopped. */
  lagAtPause: { ms: number; bytes: number };
  /** Writes stay paused this long after "switch now". */
  holdMs: number;
  shards: ShardFigures[];
}

export type CutoverCode = 'BUSY' | 'NOT_STREAMING' | 'NOT_APPLIED' | 'OLD_SOURCE' | 'PAUSE' | 'TIMEOUT' | 'DIFFER' | 'ABORTED' | 'CONNECT';

export class CutoverError extends SyncError<CutoverCode> {
  constructor(
    code: CutoverCode,
    message: string,
    /** Where the cutover stood when it gave up (pause, lag, keys compared …). */
    readonly figures: Partial<CutoverReport> = {},
    readonly differences: KeyDifference[] = [],
    options?: ErrorOptions,
  ) {
    super(code, message, options);
  }
}

/** CLIENT PAUSE … WRITE and CLIENT UNPAUSE came with Redis 6.2 (before, CLIENT PAUSE stops reads too). */
const WRITE_PAUSE_SINCE: [number, number] = [6, 2];

/** Time kept back from the timeout to extend or lift the pause before the server lifts it by itself. */
const MARGIN_MS = 100;

const POLL_MS = 2;

/** The comparison before the pause: writes go on meanwhile, so it may take long, but not for ever. */
const PRECHECK_LIMIT_MS = 60_000;

interface Master {
  shard: string;
  address: string;
  client: Redis;
  version: string;
  canPause: boolean;
  paused: boolean;
}

/**
 * Cuts over from the source to the destination: pauses writes on every source master
 * (CLIENT PAUSE <timeout> WRITE, so a pause outlives nothing: if this process dies the
 * server lifts it when the timeout ends), waits until the sinks applied everything each
 * master wrote, compares the keys written lately on both sides, and reports "switch now"
 * with the figures. On a timeout, a difference or an error it lifts the pause at once.
 *
 * Applied means what the replica source counts as applied: every batch a sink acknowledged
 * plus the bytes that carry no operation (PING, REPLCONF) once everything before them is
 * (ReplicaSession.markHandedOn → onPassed → FlowControl.pass), so it reaches the master's
 * offset exactly. A master still PINGs its replicas while clients are paused (replicationCron
 * in Redis's src/replication.c skips the PING only during a manual failover), so the offset
 * may move on by a PING while waiting: it is read once, after the pause, and the wait ends
 * when what is applied reaches it.
 */
export class Cutover {
  private running = false;
  private aborted = false;
  private masters: Master[] = [];
  private holdTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: CutoverOptions) {}

  /** Writes are paused by this cutover now (draining, checking or holding after "switch now"). */
  get pausing(): boolean {
    return this.masters.some((m) => m.paused);
  }

  async run(): Promise<CutoverReport> {
    if (this.running || this.closed) throw new CutoverError('BUSY', 'a cutover is already running');
    if (this.pausing) await this.release();
    this.running = true;
    this.aborted = false;
    let source: VerifySide | null = null;
    let destination: VerifySide | null = null;
    try {
      this.assertApplying();
      // a server that takes connections but does not answer (stopped, overloaded) must not hold the cutover
      const unanswered = (): CutoverError => new CutoverError('CONNECT', `the source or the destination did not answer within ${this.opts.timeoutMs} ms; nothing was paused`);
      this.masters = await within(this.openMasters(), this.opts.timeoutMs, unanswered);
      const old = this.masters.filter((m) => !m.canPause);
      if (old.length > 0 && !this.opts.writesStopped) {
        const which = old.map((m) => `${m.address} (Redis ${m.version})`).join(', ');
        throw new CutoverError(
          'OLD_SOURCE',
          `the source cannot pause writes: ${which} has no CLIENT PAUSE … WRITE (Redis 6.2+). Stop every application and job that writes to the source yourself, then send the cutover message again with msg.writesStopped = true: the destination is then waited for and the recent keys checked, without a pause`,
        );
      }
      const opening = [VerifySide.open('source', this.opts.source.endpoint), VerifySide.open('destination', this.opts.destination)];
      try {
        [source, destination] = await within(Promise.all(opening), this.opts.timeoutMs, unanswered);
      } catch (err) {
        // a side opened, or opening after the cutover gave up on it, is closed all the same
        for (const o of opening) void o.then((side) => side.close(), () => undefined);
        throw err;
      }
      return await this.cutover(source, destination);
    } catch (err) {
      const e = err instanceof CutoverError ? err : new CutoverError('CONNECT', (err as Error).message, {}, [], { cause: err });
      try {
        await this.release();
      } catch (unpause) {
        e.message += `; ${(unpause as Error).message}`;
      }
      throw e;
    } finally {
      this.running = false;
      source?.close();
      destination?.close();
      if (!this.pausing) this.closeMasters();
    }
  }

  private async cutover(source: VerifySide, destination: VerifySide): Promise<CutoverReport> {
    const { timeoutMs, holdMs } = this.opts;
    // The window's keys are compared once before the pause, while writes go on, so that the
    // pause only compares what may have changed since: keys that differed then (a write still
    // on its way to the destination) and keys written since the comparison began. A key equal
    // then and not written since holds the same value on both sides: the source's changes only
    // by a write, which the tap sees after the source ran it; the destination's only by the
    // sink applying one (a write that was still on its way made the key differ then).
    const precheckAt = Date.now();
    const window = this.opts.recentKeys.since(this.opts.windowMs, precheckAt);
    this.opts.onStep?.('prechecking', { keys: window.length });
    const suspects = await within(compareKeys(source, destination, window, { ttlToleranceMs: this.opts.ttlToleranceMs }), PRECHECK_LIMIT_MS, () => new CutoverError('CONNECT', `comparing the ${window.length} recent keys before the pause took over ${PRECHECK_LIMIT_MS / 1000} s; nothing was paused`));
    const precheckMs = Date.now() - precheckAt;
    this.opts.onStep?.('pausing', {});
    const pausedAt = Date.now();
    const deadline = pausedAt + timeoutMs - MARGIN_MS;
    await this.pause(timeoutMs);
    const writesPaused = this.masters.every((m) => m.paused);
    const atPause = this.opts.source.progress();
    const late = (what: string) => (): CutoverError =>
      new CutoverError('TIMEOUT', `${what} took longer than the pause's timeout of ${timeoutMs} ms; writes resumed`, { writesPaused, holdMs, pauseMs: Date.now() - pausedAt });
    const shards = await within(this.offsets(atPause), deadline - Date.now(), late('reading the masters\' offsets'));
    const figures: Partial<CutoverReport> = {
      precheckMs,
      writesPaused,
      holdMs,
      shards,
      lagAtPause: { ms: atPause?.lagMs ?? 0, bytes: shards.reduce((n, s) => n + Math.max(0, s.offset - (s.appliedAtPause ?? 0)), 0) },
    };
    const since = (): number => Date.now() - pausedAt;

    // everything each master wrote is applied
    for (;;) {
      if (this.aborted) throw new CutoverError('ABORTED', 'the cutover was called off (release, or the node closed)', { ...figures, pauseMs: since() });
      this.assertApplying(figures);
      const progress = this.opts.source.progress();
      const behind = shards.map((s) => ({ s, applied: progress?.shards.find((p) => p.shard === s.shard)?.applied ?? null }));
      const left = behind.reduce((n, b) => n + Math.max(0, b.s.offset - (b.applied ?? 0)), 0);
      if (behind.every((b) => b.applied !== null && b.applied >= b.s.offset)) break;
      if (Date.now() >= deadline) {
        const detail = behind.filter((b) => b.applied === null || b.applied < b.s.offset).map((b) => `${b.s.shard}: applied ${b.applied ?? 'nothing'} of ${b.s.offset}`).join('; ');
        throw new CutoverError('TIMEOUT', `the destination did not apply everything within ${timeoutMs} ms of the write pause (${left} bytes behind; ${detail}); writes resumed`, { ...figures, pauseMs: since() });
      }
      this.opts.onStep?.('draining', { behindBytes: left });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const drainMs = since();

    // the keys written lately are equal on both sides: what the precheck could not prove is compared now
    const again = new Map<string, DbKey>();
    for (const k of [...suspects, ...this.opts.recentKeys.writtenSince(precheckAt)]) again.set(`${k.db}:${k.key.toString('latin1')}`, { db: k.db, key: k.key });
    const keys = [...again.values()];
    const keysChecked = new Set([...window.map((k) => `${k.db}:${k.key.toString('latin1')}`), ...again.keys()]).size;
    this.opts.onStep?.('checking', { keys: keys.length });
    const differences = await within(compareKeys(source, destination, keys, { ttlToleranceMs: this.opts.ttlToleranceMs }), deadline - Date.now(), late(`comparing ${keys.length} keys`));
    const checkMs = since() - drainMs;
    Object.assign(figures, { drainMs, checkMs, keysChecked, keysCheckedPaused: keys.length });
    if (differences.length > 0) {
      const first = differences[0];
      throw new CutoverError(
        'DIFFER',
        `${differences.length} of ${keysChecked} recently written keys differ on the destination (first: "${first.key.toString()}" in db ${first.db}, ${first.reason}); writes resumed`,
        { ...figures, pauseMs: since() },
        differences,
      );
    }
    if (this.aborted) throw new CutoverError('ABORTED', 'the cutover was called off (release, or the node closed)', { ...figures, pauseMs: since() });
    if (writesPaused && Date.now() >= deadline) {
      throw new CutoverError('TIMEOUT', `the check ended ${since()} ms after the write pause, at its timeout of ${timeoutMs} ms: the pause may have ended by itself; writes resumed`, { ...figures, pauseMs: since() });
    }
    const pauseMs = since();
    if (holdMs > 0 && this.pausing) {
      // the pause only grows (Redis keeps the later end of two pauses: pauseClients in src/networking.c)
      await this.pause(holdMs);
      this.holdTimer = setTimeout(() => void this.release().finally(() => this.closeMasters()), holdMs);
    } else {
      await this.release();
    }
    return { ...(figures as CutoverReport), pauseMs, drainMs, checkMs, keysChecked, keysCheckedPaused: keys.length };
  }

  private assertApplying(figures: Partial<CutoverReport> = {}): void {
    const p = this.opts.source.progress();
    if (p === null || p.phase !== 'streaming') {
      throw new CutoverError('NOT_STREAMING', `the replica source is ${p === null ? 'not running' : p.phase}: a cutover needs it streaming, with the full sync done`, figures);
    }
    const why = this.opts.source.notApplied();
    if (why !== null) throw new CutoverError('NOT_APPLIED', `the source's stream is not being applied: ${why}`, figures);
  }

  /** Every master of the source, connected, with its version; the shards are named as the replica source names them. */
  private async openMasters(): Promise<Master[]> {
    const ep = this.opts.source.endpoint;
    const seeds = ep.mode === 'cluster' ? ep.seeds : [{ host: ep.host, port: ep.port }];
    const topology = await discoverTopology((host, port) => connectNode(ep, host, port), seeds, { tls: ep.tls?.enabled === true });
    const opened: Master[] = [];
    try {
      for (const s of topology.shards) {
        const client = await connectNode(ep, s.master.host, s.master.port);
        const version = parseInfo(String(await client.call('INFO', 'server'))).redis_version ?? '0.0';
        const [major, minor] = version.split('.').map(Number);
        const canPause = major > WRITE_PAUSE_SINCE[0] || (major === WRITE_PAUSE_SINCE[0] && minor >= WRITE_PAUSE_SINCE[1]);
        opened.push({ shard: shardKey(topology.mode, s), address: `${s.master.host}:${s.master.port}`, client, version, canPause, paused: false });
      }
    } catch (err) {
      for (const m of opened) m.client.disconnect();
      throw err;
    }
    return opened;
  }

  private async pause(ms: number): Promise<void> {
    const results = await Promise.allSettled(
      this.masters.filter((m) => m.canPause).map(async (m) => {
        await m.client.call('CLIENT', 'PAUSE', String(ms), 'WRITE');
        m.paused = true;
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const reason = (failed.reason as Error).message;
      const hint = /NOPERM/.test(reason) ? ' (the source user needs +client|pause and +client|unpause)' : '';
      throw new CutoverError('PAUSE', `writes could not be paused on the source: ${reason}${hint}`);
    }
  }

  /** The offset each master stands at, and what the sinks applied of it so far. */
  private async offsets(progress: SourceProgress | null): Promise<ShardFigures[]> {
    const replicated = new Set(progress?.shards.map((p) => p.shard) ?? []);
    const out: ShardFigures[] = [];
    for (const m of this.masters) {
      // masters of shards this source does not replicate (a shard selection) are paused, not waited for
      if (!replicated.has(m.shard)) continue;
      const offset = Number(parseInfo(String(await m.client.call('INFO', 'replication'))).master_repl_offset);
      out.push({ shard: m.shard, master: m.address, offset, appliedAtPause: progress?.shards.find((p) => p.shard === m.shard)?.applied ?? null });
    }
    const unknown = [...replicated].filter((s) => !out.some((f) => f.shard === s));
    if (unknown.length > 0) throw new CutoverError('CONNECT', `the source's topology changed: no master serves ${unknown.join(', ')} as the replica source knows it`);
    return out;
  }

  /** Lifts this cutover's pause on every master now (a run in progress is called off). */
  async release(): Promise<void> {
    if (this.running) this.aborted = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const paused = this.masters.filter((m) => m.paused);
    const failures: string[] = [];
    await Promise.all(
      paused.map(async (m) => {
        try {
          await m.client.call('CLIENT', 'UNPAUSE');
          m.paused = false;
        } catch (err) {
          failures.push(`${m.address}: ${(err as Error).message}`);
        }
      }),
    );
    if (!this.running) this.closeMasters();
    if (failures.length > 0) throw new CutoverError('PAUSE', `the write pause could not be lifted on ${failures.join('; ')}: it ends by itself at its timeout`);
  }

  /** Lifts any pause and lets go of the connections; a run in progress is called off. */
  async close(): Promise<void> {
    this.closed = true;
    this.aborted = true;
    await this.release().catch(() => undefined);
    while (this.running) await new Promise((r) => setTimeout(r, POLL_MS));
    this.closeMasters();
  }

  private closeMasters(): void {
    if (this.pausing) return;
    for (const m of this.masters) m.client.disconnect();
    this.masters = [];
  }
}

/** `work`, or the error of `late()` once `ms` passed. */
function within<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(late()), Math.max(0, ms))));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
