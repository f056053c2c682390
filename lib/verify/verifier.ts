/**
 * A verification: every key of the source's selected dbs (or a sample) compared with where the
 * flow puts it in the destination, in rounds, as redis-full-check does: a key that differs is
 * read again after a delay (the sync's applied lag, so a live sync shows no false differences),
 * and only keys that still differ after the last round are reported. Gentle on production:
 * SCAN with COUNT, pipelined PTTL + DUMP, a rate limit, never KEYS or a blocking command.
 */
import { jsonBytes } from '../rdb/json';
import { compileGlob, globMatch } from '../ops/glob';
import { compareKeys, type KeyDifference } from './compare';
import type { KeyMapping } from './mapping';
import type { DbKey, Master, VerifySide } from './side';

/** Batches of a later round read at once, each waiting out the lag between its reads. */
const RECHECKS_IN_FLIGHT = 8;

export interface VerifyOptions {
  /** Source dbs to compare; default every db that holds keys (what the mapping syncs of them). */
  dbs?: number[];
  /** Only source keys matching this Redis glob (SCAN … MATCH). */
  match?: string;
  /** A share of the keys (0 < percent ≤ 100, drawn at random) or a number of them (the first SCAN returns). */
  sample?: { percent: number } | { count: number };
  /** Keys per second read from each side, all masters together; 0: no limit. Default DEFAULT_RATE. */
  rate?: number;
  /** Keys per SCAN (its COUNT) and per pipelined read. Default 200. */
  batchSize?: number;
  /** Rounds in all, the first included. Default 3. */
  rounds?: number;
  /** The wait before each later round; a function is asked each time (the sync's applied lag). Default 1000 ms. */
  roundDelayMs?: number | (() => number);
  ttlToleranceMs?: number;
  /** Also look for keys the destination has and the source lacks. */
  extra?: boolean;
  mapping?: KeyMapping;
  /** Differences kept in the report's samples. Default 20. */
  maxSamples?: number;
  /** Differing keys held for the next round; beyond, a key is reported as it is found. Default 100000. */
  maxPending?: number;
  onProgress?: (p: VerifyProgress) => void;
  /** Called for each difference confirmed by the last round. */
  onDifference?: (d: KeyDifference) => void;
  signal?: AbortSignal;
}

export const DEFAULT_RATE = 20_000;
export const DEFAULT_ROUNDS = 3;

export interface VerifyProgress {
  phase: 'scan' | 'extra' | 'round';
  /** 1 during the scan. */
  round: number;
  rounds: number;
  /** Source keys read by SCAN so far, and what INFO keyspace counts in the selected dbs. */
  scanned: number;
  total: number;
  compared: number;
  /** Differing keys waiting for the next round. */
  pending: number;
  /** Of the whole run, an estimate. */
  percent: number;
}

export interface DifferenceSample {
  key: string;
  db: number;
  reason: KeyDifference['reason'];
  source: string;
  destination: string;
}

/** What a report counts, in all and per type. */
export interface TypeCounts {
  compared: number;
  missing: number;
  extra: number;
  differ: number;
}

export interface VerifyReport {
  equal: boolean;
  /** Source keys compared (the sample, when one is set). */
  compared: number;
  missing: number;
  extra: number;
  /** Keys both sides have that differ: type, value, TTL, stream group, or unreadable. */
  differ: number;
  /** The same counts per type of the source's key (the destination's for an extra one). */
  byType: Record<string, TypeCounts>;
  samples: DifferenceSample[];
  /** Rounds run; a key was reported only if it differed in every round it was read. */
  rounds: number;
  durationMs: number;
  /** Stopped before the end: the counts are of what was compared until then. */
  stopped: boolean;
}

/** Keys per second, spread over time; the masters' loops share it. */
class RateLimit {
  private next = 0;
  constructor(private readonly perSecond: number) {}

  async take(n: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + (n * 1000) / this.perSecond;
    if (at > now) await sleep(at - now, signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** An extra key held for the next round: the destination key, and the source keys that could have become it. */
interface PendingExtra {
  destination: DbKey;
  candidates: DbKey[];
}

const OWN_KEYS = Buffer.from('redis-sync:'); // the sync's checkpoint and staging keys (lib/sink), as the precheck leaves them aside

export async function verify(source: VerifySide, destination: VerifySide, options: VerifyOptions = {}): Promise<VerifyReport> {
  return new Verification(source, destination, options).run();
}

class Verification {
  private readonly started = Date.now();
  private readonly batch: number;
  private readonly rounds: number;
  private readonly limit: RateLimit;
  private readonly match: ReturnType<typeof compileGlob> | null;
  private readonly pending = new Map<string, DbKey>();
  private readonly pendingExtra = new Map<string, PendingExtra>();
  private readonly report: VerifyReport = { equal: true, compared: 0, missing: 0, extra: 0, differ: 0, byType: {}, samples: [], rounds: 1, durationMs: 0, stopped: false };
  private progress: VerifyProgress;
  private sourceDbs: number[] = [];

  constructor(
    private readonly source: VerifySide,
    private readonly destination: VerifySide,
    private readonly o: VerifyOptions,
  ) {
    this.batch = Math.max(1, o.batchSize ?? 200);
    this.rounds = Math.max(1, o.rounds ?? DEFAULT_ROUNDS);
    this.limit = new RateLimit(o.rate ?? DEFAULT_RATE);
    this.match = o.match ? compileGlob(Buffer.from(o.match)) : null;
    this.progress = { phase: 'scan', round: 1, rounds: this.rounds, scanned: 0, total: 0, compared: 0, pending: 0, percent: 0 };
  }

  private get stopped(): boolean {
    return this.o.signal?.aborted === true;
  }

  async run(): Promise<VerifyReport> {
    const timer = this.o.onProgress === undefined ? null : setInterval(() => this.o.onProgress?.(this.snapshot()), 1000);
    try {
      const perMaster = await Promise.all(this.source.masters.map(async (m) => [m, await this.source.dbsWithKeys(m)] as const));
      const wanted = this.o.dbs === undefined ? null : new Set(this.o.dbs);
      const dbs = new Set<number>();
      for (const [, counts] of perMaster) {
        for (const [db, n] of counts) {
          if ((wanted !== null && !wanted.has(db)) || (this.o.mapping !== undefined && !this.o.mapping.dbSynced(db))) continue;
          dbs.add(db);
          this.progress.total += n;
        }
      }
      this.sourceDbs = [...dbs].sort((a, b) => a - b);
      await Promise.all(perMaster.map(([m, counts]) => this.scanMaster(m, this.sourceDbs.filter((db) => counts.has(db)))));
      if (this.o.extra === true && !this.stopped) await this.scanExtra();
      for (let round = 2; round <= this.rounds && !this.stopped && this.pending.size + this.pendingExtra.size > 0; round++) {
        this.report.rounds = round;
        this.progress.phase = 'round';
        this.progress.round = round;
        const delay = this.roundDelay();
        await sleep(delay, this.o.signal);
        await this.recheck(round === this.rounds, delay);
      }
    } finally {
      if (timer !== null) clearInterval(timer);
    }
    this.report.stopped = this.stopped;
    this.report.equal = !this.report.stopped && this.report.missing + this.report.extra + this.report.differ === 0;
    this.report.durationMs = Date.now() - this.started;
    this.progress.percent = 100;
    this.o.onProgress?.(this.snapshot());
    return this.report;
  }

  private snapshot(): VerifyProgress {
    const p = this.progress;
    const scan = p.total === 0 ? 1 : Math.min(1, p.scanned / p.total);
    // the scan is most of the work; later rounds read only what differed
    const share = this.rounds === 1 ? 1 : 0.9;
    const rounds = p.phase === 'round' ? (p.round - 1) / this.rounds : 0;
    const percent = p.percent === 100 ? 100 : Math.min(99, Math.floor(100 * (share * scan + (1 - share) * rounds)));
    return { ...p, pending: this.pending.size + this.pendingExtra.size, percent };
  }

  private sampleDone(): boolean {
    const s = this.o.sample;
    return s !== undefined && 'count' in s && this.report.compared >= s.count;
  }

  private sampled(keys: Buffer[]): Buffer[] {
    const s = this.o.sample;
    if (s === undefined) return keys;
    if ('percent' in s) return keys.filter(() => Math.random() * 100 < s.percent);
    return keys.slice(0, Math.max(0, s.count - this.report.compared));
  }

  private async scanMaster(m: Master, dbs: number[]): Promise<void> {
    for (const db of dbs) {
      let cursor = '0';
      let next = this.source.scan(m, db, cursor, this.batch, this.o.match);
      do {
        const step = await next;
        if (this.stopped || this.sampleDone()) return;
        cursor = step.cursor;
        // the next SCAN travels while this batch is compared: one round trip less per batch
        if (cursor !== '0') {
          next = this.source.scan(m, db, cursor, this.batch, this.o.match);
          next.catch(() => undefined); // awaited in the next turn, unless the run stops first
        }
        this.progress.scanned += step.keys.length;
        const keys = this.sampled(step.keys);
        if (keys.length === 0) continue;
        await this.limit.take(keys.length, this.o.signal);
        await this.compare(keys.map((key) => ({ db, key })), this.rounds === 1);
      } while (cursor !== '0');
    }
  }

  /** Compares keys of the first round: the differing ones wait for the next (or are reported where no round follows). */
  private async compare(keys: DbKey[], last: boolean): Promise<void> {
    const diffs = await compareKeys(this.source, this.destination, keys, { ...this.o, onCompared: (type) => this.countCompared(type) });
    const limit = this.o.maxPending ?? 100_000;
    for (const d of diffs) {
      if (last || this.pending.size >= limit) this.confirm(d);
      else this.pending.set(id(d), { db: d.db, key: d.key });
    }
  }

  private countCompared(type: string): void {
    this.report.compared++;
    this.progress.compared++;
    this.countsOf(type).compared++;
  }

  private countsOf(type: string): TypeCounts {
    return (this.report.byType[type] ??= { compared: 0, missing: 0, extra: 0, differ: 0 });
  }

  private confirm(d: KeyDifference): void {
    const kind = d.reason === 'missing' || d.reason === 'extra' ? d.reason : 'differ';
    this.report[kind]++;
    this.countsOf(d.type || 'unknown')[kind]++;
    if (this.report.samples.length < (this.o.maxSamples ?? 20)) {
      const extra = d.reason === 'extra' && d.source === 'none';
      this.report.samples.push({ key: jsonBytes(extra ? d.destinationKey : d.key), db: extra ? d.destinationDb : d.db, reason: d.reason, source: d.source, destination: d.destination });
    }
    this.o.onDifference?.(d);
  }

  private roundDelay(): number {
    return Math.max(0, typeof this.o.roundDelayMs === 'function' ? this.o.roundDelayMs() : (this.o.roundDelayMs ?? 1000));
  }

  /** `settleMs`: the round's delay, the sync's lag, waited again between the reads of each key (see compareKeys). */
  private async recheck(last: boolean, settleMs: number): Promise<void> {
    const keys = [...this.pending.values()];
    this.pending.clear();
    await this.inBatches(keys, async (part) => {
      for (const d of await compareKeys(this.source, this.destination, part, { ...this.o, settleMs })) {
        if (last) this.confirm(d);
        else this.pending.set(id(d), { db: d.db, key: d.key });
      }
    });
    const extras = [...this.pendingExtra.values()];
    this.pendingExtra.clear();
    await this.inBatches(extras, async (part) => {
      for (const e of await this.extraOf(part, settleMs)) {
        if (last) this.confirmExtra(e);
        else this.pendingExtra.set(id(e.destination), e);
      }
    });
  }

  /**
   * A later round's batches, several at once: each waits out the sync's lag between its reads,
   * so a round of many differing keys (an empty destination) does not take a lag per batch.
   */
  private async inBatches<T>(items: T[], check: (part: T[]) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length && !this.stopped) {
        const part = items.slice(next, (next += this.batch));
        await this.limit.take(part.length, this.o.signal);
        await check(part);
      }
    };
    await Promise.all(Array.from({ length: RECHECKS_IN_FLIGHT }, worker));
  }

  /** The destination's keys in the dbs the selected source dbs go to, each checked against the source keys that could have become it. */
  private async scanExtra(): Promise<void> {
    this.progress.phase = 'extra';
    const mapping = this.o.mapping;
    const dbs = [...new Set(this.sourceDbs.map((db) => (mapping === undefined ? db : mapping.destinationDb(db))))];
    const last = this.rounds === 1;
    await Promise.all(
      this.destination.masters.map(async (m) => {
        for (const db of dbs) {
          let cursor = '0';
          do {
            if (this.stopped) return;
            const step = await this.destination.scan(m, db, cursor, this.batch);
            cursor = step.cursor;
            const sample = this.o.sample;
            const keys = step.keys.filter((k) => !k.subarray(0, OWN_KEYS.length).equals(OWN_KEYS) && (sample === undefined || !('percent' in sample) || Math.random() * 100 < sample.percent));
            if (keys.length === 0) continue;
            await this.limit.take(keys.length, this.o.signal);
            const entries = keys.map((key) => {
              const destination = { db, key };
              let candidates = mapping === undefined ? [destination] : mapping.candidates(destination, this.sourceDbs);
              if (this.match !== null) candidates = candidates.filter((c) => globMatch(this.match as ReturnType<typeof compileGlob>, c.key));
              return { destination, candidates };
            });
            // keys outside --match on the source side are not this run's business
            const inScope = entries.filter((e) => this.match === null || e.candidates.length > 0);
            for (const e of await this.extraOf(inScope)) {
              if (last || this.pendingExtra.size >= (this.o.maxPending ?? 100_000)) this.confirmExtra(e);
              else this.pendingExtra.set(id(e.destination), e);
            }
          } while (cursor !== '0');
        }
      }),
    );
  }

  /** Those of the destination keys that exist while none of their candidate source keys does. */
  /**
   * The entries whose destination key exists while no source key that could have become it
   * does. With `settleMs` (later rounds of a live sync) the source is read first, the
   * destination after the lag, and the source again: extra only if absent both times.
   */
  private async extraOf(entries: PendingExtra[], settleMs = 0): Promise<PendingExtra[]> {
    const inSource = async (of: PendingExtra[]): Promise<boolean[]> => {
      const found = await this.source.exists(of.flatMap((e) => e.candidates));
      let at = 0;
      return of.map((e) => found.slice(at, (at += e.candidates.length)).some(Boolean));
    };
    let before: boolean[] | null = null;
    if (settleMs > 0) {
      before = await inSource(entries);
      await sleep(settleMs, this.o.signal);
    }
    const there = await this.destination.exists(entries.map((e) => e.destination));
    const looksExtra = entries.filter((_, i) => there[i] && before?.[i] !== true);
    const after = await inSource(looksExtra);
    return looksExtra.filter((_, i) => !after[i]);
  }

  private confirmExtra(e: PendingExtra): void {
    const d = e.destination;
    this.confirm({ db: d.db, key: d.key, destinationDb: d.db, destinationKey: d.key, reason: 'extra', type: 'unknown', source: 'none', destination: 'exists' });
  }
}

function id(k: DbKey | KeyDifference): string {
  return `${k.db}\u0000${k.key.toString('latin1')}`;
}
