/**
 * Runs every check against a source and a destination and gathers the findings into a
 * report. A failing check is a finding, never an exception: the caller always gets a report.
 */
import type { EndpointConfig } from '../endpoint';
import { architecture, sourceRole } from './checks/architecture';
import { databases } from './checks/databases';
import { clusterSlots, destinationEmpty, evictionPolicy } from './checks/destination';
import { outputBuffer, protoMaxBulkLen, replBacklog } from './checks/limits';
import { memory } from './checks/memory';
import { modules } from './checks/modules';
import { keyspaceNotifications } from './checks/notifications';
import { replicationPermission } from './checks/replication';
import { functions, versions } from './checks/versions';
import { PrecheckContext } from './context';
import { SkipCheck, type Finding, type PrecheckOptions, type PrecheckReport, type Severity } from './types';

export type Check = (ctx: PrecheckContext) => Promise<Finding[]>;

/** In report order; the names appear in skipped and failed-check findings. */
export const CHECKS: ReadonlyArray<{ name: string; run: Check }> = [
  { name: 'architecture', run: architecture },
  { name: 'source role', run: sourceRole },
  { name: 'versions', run: versions },
  { name: 'replication permission', run: replicationPermission },
  { name: 'keyspace notifications', run: keyspaceNotifications },
  { name: 'destination empty', run: destinationEmpty },
  { name: 'eviction policy', run: evictionPolicy },
  { name: 'cluster slots', run: clusterSlots },
  { name: 'memory', run: memory },
  { name: 'modules', run: modules },
  { name: 'functions', run: functions },
  { name: 'databases', run: databases },
  { name: 'replication backlog', run: replBacklog },
  { name: 'replica output buffer', run: outputBuffer },
  { name: 'proto-max-bulk-len', run: protoMaxBulkLen },
];

export interface PrecheckInput {
  source: EndpointConfig;
  destination: EndpointConfig;
  options?: PrecheckOptions;
}

export async function runPrecheck(input: PrecheckInput): Promise<PrecheckReport> {
  const startedAt = Date.now();
  const ctx = new PrecheckContext(input.source, input.destination, input.options);
  try {
    await ctx.connect();
    const outcomes = await Promise.all(CHECKS.map(({ name, run }) => attempt(name, run, ctx)));
    return report([...ctx.source.findings, ...ctx.destination.findings, ...gather(outcomes)], startedAt);
  } finally {
    ctx.close();
  }
}

/** One check's findings; what it throws becomes a finding too. */
export async function runCheck(name: string, run: Check, ctx: PrecheckContext): Promise<Finding[]> {
  return gather([await attempt(name, run, ctx)]);
}

type Outcome = Finding[] | { name: string; skip: SkipCheck };

async function attempt(name: string, run: Check, ctx: PrecheckContext): Promise<Outcome> {
  try {
    return await run(ctx);
  } catch (err) {
    if (err instanceof SkipCheck) return { name, skip: err };
    return [{
      id: 'check-failed',
      severity: 'error',
      message: `the ${name} check failed: ${(err as Error).message}`,
      remedy: 'run the precheck again; if it fails the same way, check the server named, or report the message',
    }];
  }
}

/** Findings in check order; checks skipped for one reason (an endpoint that could not be reached) become one finding. */
function gather(outcomes: Outcome[]): Finding[] {
  const findings: Finding[] = [];
  const skipped = new Map<string, { finding: Finding; names: string[] }>();
  for (const o of outcomes) {
    if (Array.isArray(o)) {
      findings.push(...o);
      continue;
    }
    const reason = o.skip.message;
    const entry = skipped.get(reason);
    if (entry !== undefined) {
      entry.names.push(o.name);
      entry.finding.message = `not checked: ${entry.names.join(', ')} (${reason})`;
      continue;
    }
    const finding: Finding = {
      id: 'skipped',
      severity: o.skip.alreadyReported ? 'info' : 'warning',
      message: `not checked: ${o.name} (${reason})`,
      remedy: o.skip.alreadyReported ? 'fix the errors above and run the precheck again' : 'grant the user what the check needs, or check this point by hand',
    };
    skipped.set(reason, { finding, names: [o.name] });
    findings.push(finding);
  }
  return findings;
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

function report(all: Finding[], startedAt: number): PrecheckReport {
  // Array.prototype.sort is stable: within a severity, check order stays.
  const findings = [...all].sort((a, b) => ORDER[a.severity] - ORDER[b.severity]);
  const errors = findings.filter((f) => f.severity === 'error');
  const warnings = findings.filter((f) => f.severity === 'warning');
  return { passed: errors.length === 0, findings, errors, warnings, startedAt, durationMs: Date.now() - startedAt };
}
