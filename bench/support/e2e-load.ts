/**
 * A paced write load with end-to-end lag probes, for bench/e2e.ts.
 *
 * Writer: one raw RESP connection to the SOURCE; every `intervalMs` (absolute schedule, so a
 * late tick is made up for and the offered rate holds on average) one pipelined batch of
 * `batch` SETs, each value the send time in ms (Date.now()). The first batch-1 keys cycle
 * through `lag:<0..keySpace-1>` (bounded memory); the last SET of every batch is a probe,
 * `lagprobe:<seq>`, a key of its own.
 *
 * Meter: keyspace notifications of the DESTINATION (`notify-keyspace-events K$`, PSUBSCRIBE
 * `__keyspace@0__:lagprobe:*`). A probe's lag is the time from writing its batch to the
 * source's socket to the destination executing its SET (when the notification arrives here):
 * exact per probe, no polling resolution. Redis only evaluates the notification for string
 * commands; the probes are 1 in `batch` of them.
 */
import net from 'node:net';
import Redis from 'ioredis';

export interface PacedLoadOptions {
  srcPort: number;
  dstPort: number;
  /** SETs per batch (the last one is the probe). */
  batch?: number;
  intervalMs?: number;
  keySpace?: number;
  host?: string;
  /**
   * The destination's events that mean a probe arrived, and the notify-keyspace-events that
   * publish them: default `set` (K$); a sink that writes probes with RESTORE (the scan
   * source's live changes) notifies `restore` (class g).
   */
  arrival?: { events: string[]; flags: string };
}

export interface LagStats {
  probes: number;
  arrived: number;
  missing: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

interface Probe {
  sentAt: number;
  lagMs: number | null;
  arrivedAt: number | null;
}

export class PacedLoad {
  /** Per probe seq: when its batch was written, and its lag once it arrived at the destination. */
  readonly probes: Probe[] = [];
  sentWrites = 0;
  acked = 0;
  errors: string[] = [];
  /** Batches sent late (more than one interval behind schedule): how often the pacing slipped. */
  lateTicks = 0;
  startedAt = 0;
  stoppedAt = 0;

  private readonly batch: number;
  private readonly intervalMs: number;
  private readonly keySpace: number;
  private readonly host: string;
  private sock: net.Socket | null = null;
  private sub: Redis | null = null;
  private admin: Redis | null = null;
  private oldNotify = '';
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private seq = 0;
  private keyCursor = 0;
  private readonly listeners = new Set<(p: Probe, seq: number) => void>();
  private replyTail = '';

  constructor(private readonly opts: PacedLoadOptions) {
    this.batch = opts.batch ?? 1000;
    this.intervalMs = opts.intervalMs ?? 10;
    this.keySpace = opts.keySpace ?? 100_000;
    this.host = opts.host ?? '127.0.0.1';
  }

  get ratePerS(): number {
    return (this.batch * 1000) / this.intervalMs;
  }

  onProbe(fn: (p: Probe, seq: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Connects the meter (destination) and the writer (source); does not write yet. */
  async connect(): Promise<void> {
    this.admin = new Redis({ host: this.host, port: this.opts.dstPort, lazyConnect: true, maxRetriesPerRequest: 1 });
    await this.admin.connect();
    const cfg = (await this.admin.config('GET', 'notify-keyspace-events')) as string[];
    this.oldNotify = cfg[1] ?? '';
    const arrival = this.opts.arrival ?? { events: ['set'], flags: 'K$' };
    await this.admin.config('SET', 'notify-keyspace-events', arrival.flags);
    this.sub = new Redis({ host: this.host, port: this.opts.dstPort, lazyConnect: true, maxRetriesPerRequest: null });
    await this.sub.connect();
    const prefix = '__keyspace@0__:lagprobe:';
    this.sub.on('pmessage', (_pattern: string, channel: string, event: string) => {
      if (!arrival.events.includes(event)) return;
      const seq = Number(channel.slice(prefix.length));
      const p = this.probes[seq];
      if (!p || p.lagMs !== null) return;
      p.arrivedAt = performance.now();
      p.lagMs = p.arrivedAt - p.sentAt;
      for (const fn of this.listeners) fn(p, seq);
    });
    await this.sub.psubscribe(`${prefix}*`);
    this.sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: this.host, port: this.opts.srcPort }, () => resolve(s));
      s.once('error', reject);
    });
    this.sock.setNoDelay(true);
    this.sock.on('error', (err) => this.errors.push(`writer socket: ${err.message}`));
    this.sock.on('data', (d: Buffer) => this.onReply(d));
  }

  private onReply(d: Buffer): void {
    // every reply to SET is "+OK\r\n"; anything else is kept (first few) as an error
    const text = this.replyTail + d.toString('latin1');
    let i = 0;
    while (i + 5 <= text.length) {
      if (text.startsWith('+OK\r\n', i)) {
        this.acked++;
        i += 5;
        continue;
      }
      const end = text.indexOf('\r\n', i);
      if (end < 0) break;
      if (this.errors.length < 10) this.errors.push(text.slice(i, end));
      this.acked++;
      i = end + 2;
    }
    this.replyTail = text.slice(i);
  }

  start(): void {
    this.running = true;
    this.startedAt = performance.now();
    let k = 0;
    const tick = (): void => {
      if (!this.running) return;
      const now = performance.now();
      let sent = 0;
      while (this.running && this.startedAt + k * this.intervalMs <= now && sent < 50) {
        if (now - (this.startedAt + k * this.intervalMs) > this.intervalMs) this.lateTicks++;
        this.sendBatch();
        k++;
        sent++;
      }
      const next = this.startedAt + k * this.intervalMs;
      this.timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  }

  private sendBatch(): void {
    const ts = String(Date.now());
    const tsPart = `$${ts.length}\r\n${ts}\r\n`;
    const parts: string[] = new Array(this.batch);
    for (let i = 0; i < this.batch - 1; i++) {
      const key = `lag:${this.keyCursor}`;
      this.keyCursor = (this.keyCursor + 1) % this.keySpace;
      parts[i] = `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n${tsPart}`;
    }
    const seq = this.seq++;
    const probe = `lagprobe:${seq}`;
    parts[this.batch - 1] = `*3\r\n$3\r\nSET\r\n$${probe.length}\r\n${probe}\r\n${tsPart}`;
    this.probes[seq] = { sentAt: performance.now(), lagMs: null, arrivedAt: null };
    (this.sock as net.Socket).write(parts.join(''));
    this.sentWrites += this.batch;
  }

  /** Stops writing; resolves once the source has answered every write sent. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.stoppedAt = performance.now();
    const deadline = Date.now() + 30_000;
    while (this.acked < this.sentWrites && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Waits until every probe arrived (or the timeout): true when all did. */
  async waitProbes(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.probes.every((p) => p.lagMs !== null)) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Lag statistics over the probes sent in [from, to) (performance.now() times). */
  stats(from = 0, to = Infinity): LagStats {
    const chosen = this.probes.filter((p) => p.sentAt >= from && p.sentAt < to);
    const lags = chosen.filter((p) => p.lagMs !== null).map((p) => p.lagMs as number).sort((a, b) => a - b);
    const r = (x: number | null): number | null => (x === null ? null : Number(x.toFixed(1)));
    return {
      probes: chosen.length,
      arrived: lags.length,
      missing: chosen.length - lags.length,
      p50: r(percentile(lags, 50)),
      p90: r(percentile(lags, 90)),
      p99: r(percentile(lags, 99)),
      max: r(lags.length ? lags[lags.length - 1] : null),
    };
  }

  /** Closes the connections and restores the destination's notify-keyspace-events. */
  async close(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.sock?.destroy();
    this.sub?.disconnect();
    try {
      await this.admin?.config('SET', 'notify-keyspace-events', this.oldNotify);
    } catch {
      // the destination may be gone
    }
    this.admin?.disconnect();
  }
}
