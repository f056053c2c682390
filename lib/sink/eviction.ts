/**
 * Keys a destination evicts are lost to the sync without a word: the source keeps them and
 * its stream never names them again. So the writer checks the maxmemory-policy of every
 * destination master it writes to, refuses one that evicts unless the user allowed it, and
 * watches evicted_keys (INFO stats) of each against its value when first seen.
 *
 * expired_keys is counted too, but only as a statistic: keys expire on the destination because
 * they were written with the source's TTL (RESTORE … ABSTTL, EXPIRE, SET … EX), and the source
 * expires them at the same moment and replicates that as a DEL. A count of expiries cannot tell
 * those from anything else, so it is no evidence of loss.
 */
import { parseInfo } from '../server/info';
import type { NodeConnection } from './connection';
import { SinkError } from './errors';

/** How often every destination master's INFO stats is read: one small reply per master. */
export const EVICTION_CHECK_MS = 2000;

export interface EvictionWatchOptions {
  /** The user accepts a destination that evicts: it is watched, not refused. */
  allow: boolean;
  /** Keys evicted since the start, summed over the masters, each time the sum grows. */
  onEvicted?: (evicted: number, detail: string) => void;
  /** What cannot be checked on a master (its policy, its INFO), said once per master. */
  onUnchecked?: (what: string) => void;
}

/** Where the counts go: the writer's stats. */
export interface EvictionStats {
  evictedKeys: number;
  expiredKeys: number;
}

interface Watched {
  /** evicted_keys and expired_keys when the master was first seen; null where INFO stats is refused. */
  start: { evicted: number; expired: number } | null;
  evicted: number;
  expired: number;
}

export class EvictionWatch {
  private readonly masters = new Map<string, Watched>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;

  constructor(
    private readonly opts: EvictionWatchOptions,
    private readonly stats: EvictionStats,
  ) {}

  /**
   * Checks the masters not seen before: their policy (throws SinkError EVICTION for one that
   * evicts, unless allowed) and the counts to watch from.
   */
  async admit(conns: readonly NodeConnection[]): Promise<void> {
    for (const c of conns) {
      if (this.masters.has(c.name)) continue;
      const memory = await memoryOf(c);
      if (memory === null) this.opts.onUnchecked?.(`destination ${c.name}: its maxmemory-policy could not be read (CONFIG GET and INFO refused): make sure it is noeviction, or keys it evicts are lost to the copy`);
      // Without maxmemory a server never evicts, whatever its policy (freeMemoryIfNeeded in
      // evict.c returns at once): Redis 2.8 and 3.0 ship volatile-lru with maxmemory 0. One
      // set later is still caught by the watch of evicted_keys.
      else if (memory.policy !== 'noeviction' && memory.maxmemory > 0 && !this.opts.allow) throw new SinkError('EVICTION', refusal(c.name, memory.policy));
      const counts = await countsOf(c);
      if (counts === null) this.opts.onUnchecked?.(`destination ${c.name}: INFO stats is refused, so evictions there cannot be watched: allow the destination user INFO`);
      this.masters.set(c.name, { start: counts, evicted: 0, expired: 0 });
    }
  }

  /**
   * Polls every EVICTION_CHECK_MS: admits new masters (a failover, a resharding) and reads the
   * counts of all. A master refused then goes to `onRefused`; an unreadable one waits for the
   * next round. It asks on the writer's own connections, between its batches: the writer sends
   * each MULTI … EXEC in one go, so nothing from here lands inside one.
   */
  start(masters: () => readonly NodeConnection[], onRefused: (err: SinkError) => void): void {
    this.timer ??= setInterval(() => {
      if (this.polling) return;
      this.polling = true;
      this.poll(masters())
        .catch((err: unknown) => {
          if (err instanceof SinkError && err.code === 'EVICTION') onRefused(err);
        })
        .finally(() => (this.polling = false));
    }, EVICTION_CHECK_MS).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async poll(conns: readonly NodeConnection[]): Promise<void> {
    const live = conns.filter((c) => c.broken === null);
    await this.admit(live);
    let grew = false;
    for (const c of live) {
      const w = this.masters.get(c.name);
      if (w === undefined || w.start === null) continue;
      const now = await countsOf(c);
      if (now === null) continue;
      // a restarted master counts from 0 again: what it counted before stays counted
      if (now.evicted < w.start.evicted + w.evicted || now.expired < w.start.expired + w.expired) w.start = { evicted: now.evicted - w.evicted, expired: now.expired - w.expired };
      if (now.evicted - w.start.evicted > w.evicted) grew = true;
      w.evicted = now.evicted - w.start.evicted;
      w.expired = now.expired - w.start.expired;
    }
    const all = [...this.masters.entries()];
    this.stats.evictedKeys = all.reduce((n, [, w]) => n + w.evicted, 0);
    this.stats.expiredKeys = all.reduce((n, [, w]) => n + w.expired, 0);
    if (grew) {
      const detail = all.filter(([, w]) => w.evicted > 0).map(([name, w]) => `${name}: ${w.evicted}`).join(', ');
      this.opts.onEvicted?.(this.stats.evictedKeys, detail);
    }
  }
}

/**
 * maxmemory and its policy: CONFIG GET, or where CONFIG is refused (managed services, ACL
 * users) INFO memory's maxmemory and maxmemory_policy (3.2+).
 */
async function memoryOf(c: NodeConnection): Promise<{ policy: string; maxmemory: number } | null> {
  const r = await c.call(['CONFIG', 'GET', 'maxmemory*']);
  if (Array.isArray(r) && r.length >= 2) {
    const conf = new Map<string, string>();
    for (let i = 0; i + 1 < r.length; i += 2) conf.set(String(r[i]), String(r[i + 1]));
    const policy = conf.get('maxmemory-policy');
    if (policy !== undefined) return { policy, maxmemory: Number(conf.get('maxmemory') ?? 0) };
  }
  const info = await c.call(['INFO', 'memory']);
  if (!Buffer.isBuffer(info)) return null;
  const fields = parseInfo(info.toString());
  return fields.maxmemory_policy === undefined ? null : { policy: fields.maxmemory_policy, maxmemory: Number(fields.maxmemory ?? 0) };
}

async function countsOf(c: NodeConnection): Promise<{ evicted: number; expired: number } | null> {
  const info = await c.call(['INFO', 'stats']);
  if (!Buffer.isBuffer(info)) return null;
  const fields = parseInfo(info.toString());
  const evicted = Number(fields.evicted_keys);
  const expired = Number(fields.expired_keys);
  return Number.isFinite(evicted) && Number.isFinite(expired) ? { evicted, expired } : null;
}

function refusal(node: string, policy: string): string {
  const what = policy.startsWith('volatile-')
    ? 'it evicts keys that have a TTL once it reaches maxmemory; those keys are data too, which the source still holds until they expire'
    : 'it evicts keys once it reaches maxmemory';
  return (
    `the destination ${node} has maxmemory-policy ${policy}: ${what}, so the copy would lose them without a word. ` +
    `Set it to noeviction (CONFIG SET maxmemory-policy noeviction on every destination master, and in its configuration), ` +
    `or allow an evicting destination in the sink's settings to sync anyway (evictions are then reported)`
  );
}
