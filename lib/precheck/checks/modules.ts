/**
 * Keys of a module type (RedisJSON, RediSearch …) can only be restored where the same module
 * is loaded, at the same or a newer version (a module reads its own older encodings).
 */
import { RespError } from '../../resp/errors';
import type { RespValue } from '../../resp/parser';
import { infoSections } from '../../server/info';
import type { ProbeConnection } from '../connection';
import type { EndpointState, MasterState, PrecheckContext } from '../context';
import { SkipCheck, type Finding } from '../types';
import { text } from '../values';

/** Module name → version, as MODULE LIST (or INFO modules) reports them. */
export type ModuleSet = Map<string, number>;

export async function modules(ctx: PrecheckContext): Promise<Finding[]> {
  const read = async (ep: EndpointState): Promise<Array<{ m: MasterState; mods: ModuleSet }>> =>
    Promise.all(ep.reachableMasters().map(async (m) => ({ m, mods: await moduleSet(ep, m) })));
  const source = await read(ctx.source);
  const destination = await read(ctx.destination);
  return moduleFindings(
    source.map(({ m, mods }) => ({ address: m.address, mods })),
    destination.map(({ m, mods }) => ({ address: m.address, mods })),
  );
}

export function moduleFindings(source: Array<{ address: string; mods: ModuleSet }>, destination: Array<{ address: string; mods: ModuleSet }>): Finding[] {
  const needed: ModuleSet = new Map();
  for (const { mods } of source) for (const [name, ver] of mods) needed.set(name, Math.max(ver, needed.get(name) ?? 0));
  if (needed.size === 0) return [{ id: 'modules', severity: 'info', side: 'source', message: 'the source loads no modules', remedy: '' }];
  const findings: Finding[] = [];
  for (const { address, mods } of destination) {
    const missing = [...needed].filter(([name]) => !mods.has(name));
    if (missing.length > 0) {
      findings.push({
        id: 'modules',
        severity: 'error',
        side: 'destination',
        node: address,
        message: `destination ${address} lacks module${missing.length === 1 ? '' : 's'} the source loads: ${missing.map(([n, v]) => `${n} (source version ${v})`).join(', ')}; keys of their types cannot be written`,
        remedy: 'load the same modules on every destination master (loadmodule in redis.conf, or MODULE LOAD), at the source\'s version or newer',
      });
    }
    const older = [...needed].filter(([name, ver]) => mods.has(name) && (mods.get(name) as number) < ver);
    if (older.length > 0) {
      findings.push({
        id: 'modules',
        severity: 'warning',
        side: 'destination',
        node: address,
        message: `destination ${address} has older versions of modules than the source: ${older.map(([n, v]) => `${n} ${mods.get(n)} < ${v}`).join(', ')}; it may not read what the newer version wrote`,
        remedy: 'upgrade these modules on the destination to the source\'s version or newer',
      });
    }
  }
  if (findings.length === 0) {
    const list = [...needed].map(([n, v]) => `${n} ${v}`).join(', ');
    findings.push({ id: 'modules', severity: 'info', message: `the destination loads every module the source does (${list})`, remedy: '' });
  }
  return findings;
}

async function moduleSet(ep: EndpointState, m: MasterState): Promise<ModuleSet> {
  const r = await (m.conn as ProbeConnection).call(['MODULE', 'LIST']);
  if (!(r instanceof RespError)) return parseModuleList(r);
  // Before 4.0 there are no modules at all.
  if (/unknown command/i.test(r.message)) return new Map();
  // INFO lists modules too (6.0+), for users not allowed MODULE LIST.
  if (infoSections(m.infoText).has('modules')) {
    const mods: ModuleSet = new Map();
    for (const match of m.infoText.matchAll(/^module:name=([^,\r\n]+),ver=(\d+)/gm)) mods.set(match[1], Number(match[2]));
    return mods;
  }
  throw new SkipCheck(`${ep.side} ${m.address}: MODULE LIST refused (${r.message})`);
}

/** Entries are flat [name, <name>, ver, <n>, …] arrays in RESP2. */
function parseModuleList(reply: RespValue): ModuleSet {
  const mods: ModuleSet = new Map();
  if (!Array.isArray(reply)) return mods;
  for (const entry of reply) {
    if (!Array.isArray(entry)) continue;
    const fields = new Map<string, RespValue>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(text(entry[i]), entry[i + 1]);
    const name = fields.get('name');
    if (name !== undefined) mods.set(text(name), Number(text(fields.get('ver') ?? 0)));
  }
  return mods;
}
