/**
 * Is each endpoint a standalone server or a cluster, reached directly? Read/write-splitting
 * proxies, Sentinels and load balancers answer like Redis but cannot be replicated from (and
 * may send writes and reads to different servers); what they show of themselves is what we
 * can detect: INFO refused or without a role, an odd redis_mode, and connections to one
 * address landing on different servers.
 */
import { formatSlotRanges } from '../../cluster/slots';
import { infoSections, type Info } from '../../server/info';
import type { EndpointState, PrecheckContext } from '../context';
import type { Finding } from '../types';
import { text } from '../values';

const PROXY_REMEDY =
  'connect to the Redis servers themselves (the master of a standalone source, or the cluster nodes), not to a proxy, load balancer or read/write-splitting endpoint; managed services offer a direct (private) endpoint for this';

export async function architecture(ctx: PrecheckContext): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const ep of [ctx.source, ctx.destination]) {
    if (ep.unusable !== null) continue;
    findings.push(...(await endpointArchitecture(ep)));
  }
  return findings;
}

async function endpointArchitecture(ep: EndpointState): Promise<Finding[]> {
  const side = ep.side;
  const node = ep.seedAddress;
  const error = (message: string, remedy = PROXY_REMEDY): Finding => ({ id: 'architecture', severity: 'error', side, node, message: `${side} ${node}: ${message}`, remedy });
  if (ep.seedInfo === null) {
    const reply = ep.seedInfoError ?? '';
    if (/NOPERM/.test(reply)) {
      return [{
        id: 'architecture',
        severity: 'warning',
        side,
        node,
        message: `${side} ${node}: the user may not run INFO (${reply}), so whether this is a server or a proxy, and most other checks, cannot be told`,
        remedy: 'grant the user +info (a cluster source needs it anyway), or check these points by hand',
      }];
    }
    return [error(`INFO is refused (${reply}): Redis servers answer it, proxies often do not`)];
  }
  const info: Info = ep.seedInfo;
  const mode = info.redis_mode;
  if (mode === 'sentinel') {
    return [error('is a Sentinel (redis_mode:sentinel), not a data server', 'point the endpoint at the master Sentinel names (SENTINEL GET-MASTER-ADDR-BY-NAME <name>)')];
  }
  if (mode !== undefined && mode !== 'standalone' && mode !== 'cluster') return [error(`reports redis_mode:${mode}, neither standalone nor cluster`)];
  const role = info.role;
  if (role === undefined) {
    const sections = [...infoSections(ep.seedInfoText)].join(', ') || 'none';
    return [error(`INFO reports no replication role (sections: ${sections}): a proxy answering for several servers?`)];
  }
  if (role !== 'master' && role !== 'slave') return [error(`INFO reports role:${role}, neither master nor replica`)];

  const findings: Finding[] = [];
  // Connections a proxy or load balancer spreads over several servers show different run ids.
  const seedMaster = ep.masters.find((m) => m.address === node);
  if (seedMaster !== undefined && info.run_id !== undefined) {
    const other = await ep.open(seedMaster);
    const again = await other.call(['INFO', 'server']);
    other.close();
    const runId = /run_id:(\w+)/.exec(text(again))?.[1];
    if (runId !== undefined && runId !== info.run_id) {
      findings.push(error(`two connections to this address reached different servers (run_id ${info.run_id.slice(0, 8)}… and ${runId.slice(0, 8)}…): a load balancer or proxy`));
    }
  }
  const cfg = ep.config;
  if (side === 'source' && cfg.mode === 'standalone' && info.cluster_enabled === '1') {
    findings.push(error(
      'is configured as a standalone server but is a cluster node (cluster_enabled:1): the sync would copy only the slots of this one node',
      'set the endpoint\'s mode to cluster, with this node as a seed',
    ));
  }
  if (findings.length > 0) return findings;
  const shape =
    ep.topology?.mode === 'cluster'
      ? `a cluster of ${ep.masters.length} master${ep.masters.length === 1 ? '' : 's'} (${ep.masters.map((m) => `${m.address} slots ${formatSlotRanges(m.slots)}`).join('; ')})`
      : `a standalone ${role === 'master' ? 'master' : 'replica'}`;
  return [{ id: 'architecture', severity: 'info', side, node, message: `${side} ${node}: ${shape}, reached directly`, remedy: '' }];
}

/**
 * A source must be a master, or a replica whose own link is up (a replica passes its master's
 * stream on, but answers PSYNC with NOMASTERLINK while its link is down).
 */
export async function sourceRole(ctx: PrecheckContext): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const m of ctx.source.reachableMasters()) {
    const info = ctx.source.info(m);
    const at = { side: 'source' as const, node: m.address };
    if (info.role === 'master') {
      findings.push({ id: 'source-role', severity: 'info', ...at, message: `source ${m.address} is a master`, remedy: '' });
    } else if (info.role === 'slave') {
      const master = `${info.master_host}:${info.master_port}`;
      if (info.master_link_status === 'up') {
        findings.push({
          id: 'source-role',
          severity: 'info',
          ...at,
          message: `source ${m.address} is a replica of ${master} with its link up: it can serve replication, a little behind its master`,
          remedy: '',
        });
      } else {
        findings.push({
          id: 'source-role',
          severity: 'error',
          ...at,
          message: `source ${m.address} is a replica whose link to its master ${master} is ${info.master_link_status ?? 'unknown'}: it refuses replicas (NOMASTERLINK) until the link is up`,
          remedy: `repair the replica's link to ${master}, or point the source endpoint at the master`,
        });
      }
    }
  }
  return findings;
}
