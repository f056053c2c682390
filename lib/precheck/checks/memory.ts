/**
 * Room on the destination: what it can still take (maxmemory minus used_memory; without a
 * maxmemory, the machine's memory) against what the source uses, with a margin. For a cluster
 * destination also per master, by the share of the source's slots it will hold.
 */
import { formatSlotRanges, type SlotRange } from '../../cluster/slots';
import { infoNumber } from '../../server/info';
import type { EndpointState, MasterState, PrecheckContext } from '../context';
import { SkipCheck, type Finding } from '../types';
import { bytes } from '../values';

export const MEMORY_MARGIN = 0.1;

interface Room {
  /** Bytes the destination can still take. */
  free: number;
  /** How it was bounded, for the message. */
  how: string[];
}

export async function memory(ctx: PrecheckContext): Promise<Finding[]> {
  const src = ctx.source;
  const dst = ctx.destination;
  const srcMasters = src.reachableMasters();
  const dstMasters = dst.reachableMasters();
  const used = (ep: EndpointState, m: MasterState): number => {
    const v = infoNumber(ep.info(m), 'used_memory');
    if (v === undefined) throw new SkipCheck(`${ep.side} ${m.address}: INFO shows no used_memory`);
    return v;
  };
  const sourceUsed = srcMasters.reduce((a, m) => a + used(src, m), 0);
  const room = roomOf(dst, dstMasters, used);
  const needed = sourceUsed * (1 + MEMORY_MARGIN);
  const partial = (ep: EndpointState): string => {
    const cut = ep.masters.length - ep.masters.filter((m) => m.conn !== null).length;
    return cut === 0 ? '' : ` (${cut} unreachable ${ep.side} master${cut === 1 ? '' : 's'} not counted)`;
  };
  const numbers = `the source uses ${bytes(sourceUsed)} (used_memory${srcMasters.length > 1 ? ` summed over ${srcMasters.length} masters` : ''})${partial(src)}, with a ${MEMORY_MARGIN * 100}% margin ${bytes(needed)}; the destination can take ${bytes(room.free)} more${partial(dst)}: ${room.how.join('; ')}`;
  const findings: Finding[] = [];
  if (room.free < needed) {
    findings.push({
      id: 'memory',
      severity: 'error',
      side: 'destination',
      message: `not enough room on the destination: ${numbers}`,
      remedy: 'raise maxmemory on the destination (or add masters to a destination cluster), or free memory there, before the sync; with noeviction a full destination refuses writes (OOM) and the sink stops',
    });
  } else {
    findings.push({ id: 'memory', severity: 'info', side: 'destination', message: numbers, remedy: '' });
  }
  if (dst.topology?.mode === 'cluster' && dstMasters.length > 1) findings.push(...perMaster(src, srcMasters, dst, dstMasters, used));
  return findings;
}

/**
 * The room of a set of destination masters. Masters without maxmemory are bounded by their
 * machine, which masters on the same host share: counted once per host.
 */
function roomOf(dst: EndpointState, masters: MasterState[], used: (ep: EndpointState, m: MasterState) => number): Room {
  let free = 0;
  const how: string[] = [];
  const unbounded = new Map<string, MasterState[]>();
  for (const m of masters) {
    const max = infoNumber(dst.info(m), 'maxmemory') ?? 0;
    if (max > 0) {
      const u = used(dst, m);
      free += Math.max(0, max - u);
      how.push(`${m.address} maxmemory ${bytes(max)} − used ${bytes(u)}`);
    } else {
      unbounded.set(m.host, [...(unbounded.get(m.host) ?? []), m]);
    }
  }
  for (const [host, group] of unbounded) {
    const total = infoNumber(dst.info(group[0]), 'total_system_memory');
    if (total === undefined || total === 0) {
      throw new SkipCheck(`destination ${group.map((m) => m.address).join(', ')}: maxmemory is 0 and INFO shows no total_system_memory to bound it`);
    }
    const u = group.reduce((a, m) => a + used(dst, m), 0);
    free += Math.max(0, total - u);
    const who = group.length === 1 ? group[0].address : `${group.length} masters on ${host}`;
    how.push(`${who} ${group.length === 1 ? 'has' : 'have'} maxmemory 0 (no limit), so the machine's total_system_memory ${bytes(total)} − used ${bytes(u)} is the bound`);
  }
  return { free, how };
}

/**
 * Each destination master against its share of the source: exact where it holds exactly the
 * slots of one source master, else estimated with the source's memory spread evenly over its
 * slots. Masters bounded only by a shared machine are covered by the total above.
 */
function perMaster(
  src: EndpointState,
  srcMasters: MasterState[],
  dst: EndpointState,
  dstMasters: MasterState[],
  used: (ep: EndpointState, m: MasterState) => number,
): Finding[] {
  const findings: Finding[] = [];
  for (const d of dstMasters) {
    const max = infoNumber(dst.info(d), 'maxmemory') ?? 0;
    if (max === 0) continue;
    const same = srcMasters.find((s) => sameRanges(s.slots, d.slots));
    const share = same !== undefined ? used(src, same) : srcMasters.reduce((a, s) => a + (used(src, s) * overlap(s.slots, d.slots)) / count(s.slots), 0);
    const needed = share * (1 + MEMORY_MARGIN);
    const free = Math.max(0, max - used(dst, d));
    if (free >= needed) continue;
    const basis = same !== undefined ? `source master ${same.address} has the same slots and uses ${bytes(share)}` : `the source's slot layout differs; spreading its memory evenly over its slots, these slots hold about ${bytes(share)}`;
    findings.push({
      id: 'memory-per-master',
      severity: 'warning',
      side: 'destination',
      node: d.address,
      message: `destination master ${d.address} (slots ${formatSlotRanges(d.slots)}) can take ${bytes(free)} more (maxmemory ${bytes(max)}), but ${basis}, ${bytes(needed)} with the margin`,
      remedy: 'raise maxmemory on this master, or move slots to masters with room (CLUSTER SETSLOT / redis-cli --cluster reshard) before the sync',
    });
  }
  return findings;
}

function count(ranges: SlotRange[]): number {
  return ranges.reduce((a, [s, e]) => a + e - s + 1, 0);
}

function overlap(a: SlotRange[], b: SlotRange[]): number {
  let n = 0;
  for (const [as, ae] of a) for (const [bs, be] of b) n += Math.max(0, Math.min(ae, be) - Math.max(as, bs) + 1);
  return n;
}

function sameRanges(a: SlotRange[], b: SlotRange[]): boolean {
  return a.length === b.length && a.every(([s, e], i) => s === b[i][0] && e === b[i][1]);
}
