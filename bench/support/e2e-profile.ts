/**
 * Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function and per file, and
 * inclusive time of the package's own functions. Used by bench/e2e.ts when BENCH_E2E_PROF is
 * set; also a command line:
 *
 *   npx tsx bench/support/e2e-profile.ts <file.cpuprofile> [top=30] [fromS] [toS]
 *
 * fromS/toS restrict the summary to a window of the profile (seconds since its start), e.g.
 * one phase of a bench run.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  selfByFunction: ProfileRow[];
  selfByFile: ProfileRow[];
  /** Inclusive time of functions of this package (dist/lib, dist/nodes). */
  inclusiveOwn: ProfileRow[];
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const i = u.search(/\/(dist|node_modules)\//);
  return i >= 0 ? u.slice(i + 1) : u || '(native)';
}

export function summarizeProfile(file: string, top = 30, fromS = 0, toS = Infinity): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const s = t / 1e6;
    if (s < fromS || s > toS) continue;
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  let gc = 0;
  const fnSelf = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  const ownIncl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as ProfileNode;
    const cf = n.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    if (cf.functionName === '(garbage collector)') gc += us;
    const file = shortUrl(cf.url);
    const fname = `${cf.functionName || '(anonymous)'} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fnSelf.set(fname, (fnSelf.get(fname) ?? 0) + us);
    fileSelf.set(file, (fileSelf.get(file) ?? 0) + us);
    // inclusive: every distinct own frame on the stack gets the sample
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = (byId.get(cur) as ProfileNode).callFrame;
      if (!/\/dist\/(lib|nodes)\//.test(f.url)) continue;
      const k = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      ownIncl.set(k, (ownIncl.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: busy > 0 ? Number(((100 * us) / busy).toFixed(1)) : 0 }));
  return { totalMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), gcMs: Math.round(gc / 1000), selfByFunction: rows(fnSelf), selfByFile: rows(fileSelf), inclusiveOwn: rows(ownIncl) };
}

export function formatSummary(s: ProfileSummary): string {
  const out: string[] = [];
  out.push(`profile: ${s.totalMs} ms sampled, ${s.idleMs} ms idle, busy ${s.totalMs - s.idleMs} ms (GC ${s.gcMs} ms); % of busy time`);
  out.push('  self time by function:');
  for (const r of s.selfByFunction) out.push(`    ${r.pct.toFixed(1).padStart(5)}% ${String(r.ms).padStart(7)} ms  ${r.name}`);
  out.push('  self time by file:');
  for (const r of s.selfByFile) out.push(`    ${r.pct.toFixed(1).padStart(5)}% ${String(r.ms).padStart(7)} ms  ${r.name}`);
  out.push('  inclusive time of this package\'s functions:');
  for (const r of s.inclusiveOwn) out.push(`    ${r.pct.toFixed(1).padStart(5)}% ${String(r.ms).padStart(7)} ms  ${r.name}`);
  return out.join('\n');
}

if (require.main === module) {
  const [file, top, from, to] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx bench/support/e2e-profile.ts <file.cpuprofile> [top] [fromS] [toS]');
    process.exit(2);
  }
  console.log(formatSummary(summarizeProfile(file, Number(top ?? 30), Number(from ?? 0), to === undefined ? Infinity : Number(to))));
}
