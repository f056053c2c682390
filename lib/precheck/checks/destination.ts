/** What must hold of the destination alone: emptiness (when asked), eviction policy, slot coverage. */
import { formatSlotRanges, SLOT_COUNT, type SlotRange } from '../../cluster/slots';
import { RespError } from '../../resp/errors';
import { infoNumber } from '../../server/info';
import type { ProbeConnection } from '../connection';
import type { MasterState, PrecheckContext } from '../context';
import type { Finding } from '../types';
import { configValue, text } from '../values';

/** The sync's own keys (checkpoints), which a destination may hold from an earlier run of the same sync. */
const OWN_KEYS = 'redis-sync:*';
/**
 * A db holding more keys than this cannot be only checkpoints (at most one per hash slot plus
 * one global key), so its count is reported as is instead of scanning it for ours.
 */
const MAX_OWN_KEYS = SLOT_COUNT + 1;

/** "precheck and intercept": every selected db of every master holds nothing but our checkpoints. */
export async function destinationEmpty(ctx: PrecheckContext): Promise<Finding[]> {
  if (!ctx.options.requireEmptyDestination) return [];
  const dst = ctx.destination;
  const selected = ctx.options.databases;
  const findings: Finding[] = [];
  let ignored = 0;
  for (const m of dst.reachableMasters()) {
    const info = dst.info(m);
    const held: string[] = [];
    for (const [field, value] of Object.entries(info)) {
      const db = /^db(\d+)$/.exec(field);
      if (db === null) continue;
      const index = Number(db[1]);
      if (selected !== undefined && !selected.includes(index)) continue;
      let keys = Number(/keys=(\d+)/.exec(value)?.[1] ?? 0);
      if (keys > 0 && keys <= MAX_OWN_KEYS) {
        const own = await countOwnKeys(ctx, m, index);
        ignored += own;
        keys -= own;
      }
      if (keys > 0) held.push(`db${index}: ${keys} key${keys === 1 ? '' : 's'}`);
    }
    if (held.length > 0) {
      findings.push({
        id: 'destination-empty',
        severity: 'error',
        side: 'destination',
        node: m.address,
        message: `destination ${m.address} is not empty (${held.join(', ')}, not counting ${OWN_KEYS} checkpoint keys), but the conflict policy "precheck and intercept" needs it empty`,
        remedy: 'empty the destination (FLUSHALL, or FLUSHDB in the dbs named), choose other destination dbs, or choose the conflict policy "ignore" (the source overwrites keys of the same name)',
      });
    }
  }
  if (findings.length > 0) return findings;
  const dbs = selected === undefined ? 'any db' : `db ${selected.join(', ')}`;
  const own = ignored > 0 ? ` (${ignored} ${OWN_KEYS} checkpoint keys of an earlier run ignored)` : '';
  return [{ id: 'destination-empty', severity: 'info', side: 'destination', message: `the destination holds no keys in ${dbs}${own}`, remedy: '' }];
}

async function countOwnKeys(ctx: PrecheckContext, m: MasterState, db: number): Promise<number> {
  // A connection of its own: SELECT would move every other check's commands to this db.
  const conn = await ctx.destination.open(m);
  try {
    if (db !== 0) await conn.ok(['SELECT', db]);
    let count = 0;
    let cursor = '0';
    do {
      const r = (await conn.ok(['SCAN', cursor, 'MATCH', OWN_KEYS, 'COUNT', 1000])) as [Buffer, Buffer[]];
      cursor = text(r[0]);
      count += r[1].length;
    } while (cursor !== '0');
    return count;
  } finally {
    conn.close();
  }
}

/** Any other policy lets the destination delete keys the source still has, silently. */
export async function evictionPolicy(ctx: PrecheckContext): Promise<Finding[]> {
  const dst = ctx.destination;
  const findings: Finding[] = [];
  const masters = dst.reachableMasters();
  for (const m of masters) {
    const info = dst.info(m);
    let policy: string | undefined = info.maxmemory_policy;
    if (policy === undefined) {
      const r = await (m.conn as ProbeConnection).call(['CONFIG', 'GET', 'maxmemory-policy']);
      policy = r instanceof RespError ? undefined : configValue(r, 'maxmemory-policy');
    }
    if (policy === undefined) {
      findings.push({
        id: 'eviction-policy',
        severity: 'warning',
        side: 'destination',
        node: m.address,
        message: `destination ${m.address}: maxmemory-policy could not be read (not in INFO, CONFIG GET refused)`,
        remedy: 'make sure maxmemory-policy is noeviction',
      });
    } else if (policy !== 'noeviction') {
      const maxmemory = infoNumber(info, 'maxmemory') ?? 0;
      findings.push({
        id: 'eviction-policy',
        severity: 'error',
        side: 'destination',
        node: m.address,
        message: `destination ${m.address}: maxmemory-policy is ${policy}${maxmemory === 0 ? ' (with maxmemory 0 nothing is evicted yet, but any memory limit set later starts evicting)' : ''}: keys evicted from the destination stay on the source, so the data differs silently`,
        remedy: 'CONFIG SET maxmemory-policy noeviction (and in redis.conf, or the provider\'s parameter group)',
      });
    }
  }
  if (findings.length === 0 && masters.length > 0) {
    findings.push({ id: 'eviction-policy', severity: 'info', side: 'destination', message: `maxmemory-policy is noeviction on ${masters.length === 1 ? masters[0].address : `all ${masters.length} destination masters`}`, remedy: '' });
  }
  return findings;
}

/** A cluster destination must serve every slot from a reachable master, or writes to the rest fail. */
export async function clusterSlots(ctx: PrecheckContext): Promise<Finding[]> {
  const dst = ctx.destination;
  // Skips the check when the destination could not be reached at all.
  dst.reachableMasters();
  if (dst.topology?.mode !== 'cluster') return [];
  const served: SlotRange[] = dst.masters.flatMap((m) => m.slots).sort((a, b) => a[0] - b[0]);
  const missing: SlotRange[] = [];
  let next = 0;
  for (const [start, end] of served) {
    if (start > next) missing.push([next, start - 1]);
    next = Math.max(next, end + 1);
  }
  if (next < SLOT_COUNT) missing.push([next, SLOT_COUNT - 1]);
  const findings: Finding[] = [];
  if (missing.length > 0) {
    const count = missing.reduce((a, [s, e]) => a + e - s + 1, 0);
    findings.push({
      id: 'cluster-slots',
      severity: 'error',
      side: 'destination',
      message: `the destination cluster serves ${SLOT_COUNT - count} of ${SLOT_COUNT} slots: ${count} unassigned (${formatSlotRanges(missing)})`,
      remedy: 'assign the slots to masters (CLUSTER ADDSLOTSRANGE, or redis-cli --cluster fix) before the sync',
    });
  }
  const cut = dst.masters.filter((m) => m.conn === null);
  for (const m of cut) {
    findings.push({
      id: 'cluster-slots',
      severity: 'error',
      side: 'destination',
      node: m.address,
      message: `slots ${formatSlotRanges(m.slots)} of the destination cluster are served by ${m.address}, which cannot be reached from here (${m.infoError ?? 'no connection'})`,
      remedy: 'make every master reachable from this machine at the address the cluster announces (cluster-announce-ip / -port)',
    });
  }
  if (findings.length === 0) {
    findings.push({ id: 'cluster-slots', severity: 'info', side: 'destination', message: `all ${SLOT_COUNT} slots of the destination cluster are served by ${dst.masters.length} reachable masters`, remedy: '' });
  }
  return findings;
}
