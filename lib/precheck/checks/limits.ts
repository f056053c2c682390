/**
 * Limits that do not stop a sync from starting but can break it later, each put against a
 * measurement: the source's backlog and replica output buffer against its write rate, and the
 * destination's largest accepted argument against the largest source keys.
 */
import { RespError } from '../../resp/errors';
import { infoNumber } from '../../server/info';
import type { ProbeConnection } from '../connection';
import type { MasterState, PrecheckContext, WriteRate } from '../context';
import { SkipCheck, type Finding } from '../types';
import { bytes, configValue, seconds, text } from '../values';

/**
 * Snapshot throughput assumed to estimate how long a full sync takes (fork, RDB, transfer):
 * the order of a local network and our parser, stated in the messages that use it.
 */
const ASSUMED_SNAPSHOT_BYTES_PER_SECOND = 100 * 1024 * 1024;

function rateText(rate: WriteRate, sampleMs: number): string {
  const basis =
    rate.basis === 'master_repl_offset'
      ? 'master_repl_offset'
      : 'total_net_input_bytes, an upper bound: no replica has connected yet, so the replication offset does not move';
  return `${bytes(rate.bytesPerSecond)}/s of writes (sampled over ${seconds(sampleMs / 1000)} from ${basis})`;
}

/** How long a disconnect (a Node-RED restart, a network cut) may last before only a full sync can follow. */
export async function replBacklog(ctx: PrecheckContext): Promise<Finding[]> {
  const src = ctx.source;
  const findings: Finding[] = [];
  for (const m of src.reachableMasters()) {
    const size = infoNumber(src.info(m), 'repl_backlog_size');
    if (size === undefined) throw new SkipCheck(`source ${m.address}: INFO shows no repl_backlog_size`);
    const rate = await ctx.writeRate(m);
    const at = { side: 'source' as const, node: m.address };
    if (rate.bytesPerSecond === 0) {
      findings.push({ id: 'repl-backlog', severity: 'info', ...at, message: `source ${m.address}: repl-backlog-size ${bytes(size)}; no writes during the ${seconds(ctx.options.writeRateSampleMs / 1000)} sample, so any pause is covered at this rate`, remedy: '' });
      continue;
    }
    const covered = size / rate.bytesPerSecond;
    const message = `source ${m.address}: repl-backlog-size ${bytes(size)} at ${rateText(rate, ctx.options.writeRateSampleMs)} covers a disconnect of ${seconds(covered)}`;
    if (covered < ctx.options.minBacklogSeconds) {
      const wanted = rate.bytesPerSecond * ctx.options.minBacklogSeconds;
      findings.push({
        id: 'repl-backlog',
        severity: 'warning',
        ...at,
        message: `${message}: a longer one (a Node-RED restart, a network cut) can only be followed by a new full sync`,
        remedy: `raise the backlog to cover the longest pause you expect, e.g. ${ctx.options.minBacklogSeconds} s: CONFIG SET repl-backlog-size ${Math.ceil(wanted)} (${bytes(wanted)})`,
      });
    } else {
      findings.push({ id: 'repl-backlog', severity: 'info', ...at, message, remedy: '' });
    }
  }
  return findings;
}

/**
 * During a full sync the source buffers every write for the replica until the snapshot is
 * through; past the hard limit (or the soft one for its seconds) it drops the replica, and the
 * full sync starts over, possibly forever.
 */
export async function outputBuffer(ctx: PrecheckContext): Promise<Finding[]> {
  const src = ctx.source;
  const findings: Finding[] = [];
  for (const m of src.reachableMasters()) {
    const limit = await replicaLimit(m);
    const used = infoNumber(src.info(m), 'used_memory') ?? 0;
    const rate = await ctx.writeRate(m);
    const at = { side: 'source' as const, node: m.address };
    const limits = `client-output-buffer-limit replica ${limit.hard === 0 ? 'no hard limit' : `hard ${bytes(limit.hard)}`}, ${limit.soft === 0 ? 'no soft limit' : `soft ${bytes(limit.soft)} for ${limit.softSeconds} s`}`;
    if (rate.bytesPerSecond === 0) {
      findings.push({ id: 'output-buffer', severity: 'info', ...at, message: `source ${m.address}: ${limits}; no writes during the sample, so nothing accumulates while the snapshot is sent`, remedy: '' });
      continue;
    }
    const snapshotSeconds = Math.max(1, used / ASSUMED_SNAPSHOT_BYTES_PER_SECOND);
    const grows = rate.bytesPerSecond * snapshotSeconds;
    const estimate = `at ${rateText(rate, ctx.options.writeRateSampleMs)}, a snapshot of ${bytes(used)} (used_memory, at an assumed ${bytes(ASSUMED_SNAPSHOT_BYTES_PER_SECOND)}/s: ${seconds(snapshotSeconds)}) lets about ${bytes(grows)} accumulate`;
    const overHard = limit.hard > 0 && grows > limit.hard;
    const overSoft = limit.soft > 0 && snapshotSeconds > limit.soft / rate.bytesPerSecond + limit.softSeconds;
    if (overHard || overSoft) {
      findings.push({
        id: 'output-buffer',
        severity: 'warning',
        ...at,
        message: `source ${m.address}: ${limits}; ${estimate}: above the ${overHard ? 'hard' : 'soft'} limit, so the source may drop the link during the full sync and start it over`,
        remedy: `raise the replica limit for the sync, e.g. CONFIG SET client-output-buffer-limit "replica ${Math.ceil(grows * 2)} ${Math.ceil(grows)} 60", or sync when writes are fewer`,
      });
    } else {
      findings.push({ id: 'output-buffer', severity: 'info', ...at, message: `source ${m.address}: ${limits}; ${estimate}, within the limits`, remedy: '' });
    }
  }
  return findings;
}

async function replicaLimit(m: MasterState): Promise<{ hard: number; soft: number; softSeconds: number }> {
  const r = await (m.conn as ProbeConnection).call(['CONFIG', 'GET', 'client-output-buffer-limit']);
  const value = r instanceof RespError ? undefined : configValue(r, 'client-output-buffer-limit');
  if (value === undefined) throw new SkipCheck(`source ${m.address}: CONFIG GET client-output-buffer-limit refused${r instanceof RespError ? ` (${r.message})` : ''}`);
  // "normal 0 0 0 slave 268435456 67108864 60 pubsub …"; Redis 5+ also accepts "replica" as the class name.
  const m2 = /(?:^|\s)(?:slave|replica) (\d+) (\d+) (\d+)/.exec(value);
  if (m2 === null) throw new SkipCheck(`source ${m.address}: no replica class in client-output-buffer-limit "${value}"`);
  return { hard: Number(m2[1]), soft: Number(m2[2]), softSeconds: Number(m2[3]) };
}

const DEFAULT_PROTO_MAX_BULK_LEN = 512 * 1024 * 1024;

/**
 * Every argument the destination accepts is at most proto-max-bulk-len: a RESTORE payload, or
 * a string value, bigger than that is refused. The largest source keys are estimated from a
 * sample (a SCAN of keySample keys per master, sized with MEMORY USAGE, as redis-cli --bigkeys
 * --memory does), not every key.
 */
export async function protoMaxBulkLen(ctx: PrecheckContext): Promise<Finding[]> {
  const dst = ctx.destination;
  const srcMasters = ctx.source.reachableMasters();
  const dstMasters = dst.reachableMasters();
  if (dstMasters.length === 0) return [];
  let limit = Infinity;
  let limitNode = '';
  const unread: string[] = [];
  for (const m of dstMasters) {
    const r = await (m.conn as ProbeConnection).call(['CONFIG', 'GET', 'proto-max-bulk-len']);
    const v = r instanceof RespError ? undefined : configValue(r, 'proto-max-bulk-len');
    if (v === undefined) unread.push(m.address);
    const n = v === undefined ? DEFAULT_PROTO_MAX_BULK_LEN : Number(v);
    if (n < limit) {
      limit = n;
      limitNode = m.address;
    }
  }
  const samples = await Promise.all(srcMasters.map((m) => largestKeys(ctx, m)));
  const sampled = samples.reduce((a, s) => a + s.sampled, 0);
  const largest = samples.reduce<{ key: string; size: number; node: string } | null>(
    (a, s) => (s.largest !== null && (a === null || s.largest.size > a.size) ? s.largest : a),
    null,
  );
  const assumed = unread.length > 0 ? ` (CONFIG GET refused on ${unread.join(', ')}: the default 512 MiB assumed there)` : '';
  const limitText = `destination proto-max-bulk-len ${bytes(limit)} (${limitNode})${assumed}`;
  if (largest === null) {
    return [{ id: 'proto-max-bulk-len', severity: 'info', message: `${limitText}; the source has no keys to sample`, remedy: '' }];
  }
  const found = `the largest of ${sampled} sampled source keys is ${JSON.stringify(largest.key.slice(0, 60))} on ${largest.node}, ${bytes(largest.size)} (MEMORY USAGE)`;
  if (largest.size > limit) {
    return [{
      id: 'proto-max-bulk-len',
      severity: 'warning',
      side: 'destination',
      node: limitNode,
      message: `${found}, above the ${limitText}: the sink writes a key above the replica source's big key threshold (default 1 MiB) in parts, each far below the limit, but a smaller key in one RESTORE, which the destination refuses above the limit`,
      remedy: `keep the replica source's big key threshold below ${bytes(limit)} (the default 1 MiB is), or raise proto-max-bulk-len on every destination master (CONFIG SET proto-max-bulk-len ${Math.ceil(largest.size * 2)})`,
    }];
  }
  return [{ id: 'proto-max-bulk-len', severity: 'info', message: `${found}, within the ${limitText}`, remedy: '' }];
}

async function largestKeys(ctx: PrecheckContext, m: MasterState): Promise<{ sampled: number; largest: { key: string; size: number; node: string } | null }> {
  const info = ctx.source.info(m);
  const dbs = Object.keys(info)
    .map((f) => /^db(\d+)$/.exec(f))
    .filter((x): x is RegExpExecArray => x !== null)
    .map((x) => Number(x[1]));
  if (dbs.length === 0) return { sampled: 0, largest: null };
  const perDb = Math.max(1, Math.ceil(ctx.options.keySample / dbs.length));
  // A connection of its own: SELECT would move every other check's commands to this db.
  const conn = await ctx.source.open(m);
  try {
    let sampled = 0;
    let largest: { key: string; size: number; node: string } | null = null;
    for (const db of dbs) {
      const selected = await conn.call(['SELECT', db]);
      if (selected instanceof RespError) continue;
      const keys: Buffer[] = [];
      let cursor = '0';
      do {
        const r = await conn.call(['SCAN', cursor, 'COUNT', 100]);
        if (r instanceof RespError) throw new SkipCheck(`source ${m.address}: SCAN refused (${r.message})`);
        const [next, batch] = r as [Buffer, Buffer[]];
        cursor = text(next);
        keys.push(...batch);
      } while (cursor !== '0' && keys.length < perDb);
      const sizes = await Promise.all(keys.slice(0, perDb).map((k) => conn.call(['MEMORY', 'USAGE', k])));
      for (const [i, size] of sizes.entries()) {
        if (size instanceof RespError) throw new SkipCheck(`source ${m.address}: MEMORY USAGE refused (${size.message})`);
        sampled++;
        if (typeof size === 'number' && (largest === null || size > largest.size)) {
          largest = { key: keys[i].toString('utf8'), size, node: m.address };
        }
      }
    }
    return { sampled, largest };
  } finally {
    conn.close();
  }
}
