/**
 * Does every source master notify keyspace events as the scan source needs them (K and every
 * class, see lib/scan/keyspace-events.ts)? Only the scan source needs them, so a missing flag
 * matters (a warning) where the replica source cannot attach: PSYNC and SYNC renamed away, as
 * managed services do; elsewhere it is an info. Managed services also rename CONFIG: then the
 * flags cannot be read, and the finding says where to set them.
 */
import { RespError } from '../../resp/errors';
import { KEYSPACE_EVENTS, keyspaceEventsRemedy, missingKeyspaceEvents } from '../../scan/keyspace-events';
import type { ProbeConnection } from '../connection';
import type { PrecheckContext } from '../context';
import type { Finding } from '../types';
import { configValue } from '../values';

export async function keyspaceNotifications(ctx: PrecheckContext): Promise<Finding[]> {
  const findings: Finding[] = [];
  const ready: string[] = [];
  for (const m of ctx.source.reachableMasters()) {
    const conn = m.conn as ProbeConnection;
    const commands = await conn.call(['COMMAND', 'INFO', 'PSYNC', 'SYNC']);
    const noReplication = Array.isArray(commands) && commands.length === 2 && commands.every((c) => !Array.isArray(c));
    const severity = noReplication ? 'warning' : 'info';
    const why = noReplication ? 'PSYNC and SYNC are unknown here, so only the scan source (redis-scan-source) can copy it, and it' : 'the scan source (redis-scan-source; the replica source does not)';
    const r = await conn.call(['CONFIG', 'GET', 'notify-keyspace-events']);
    const current = r instanceof RespError ? undefined : configValue(r, 'notify-keyspace-events');
    if (current === undefined) {
      findings.push({
        id: 'keyspace-notifications',
        severity,
        side: 'source',
        node: m.address,
        message: `source ${m.address}: notify-keyspace-events cannot be read (CONFIG GET ${r instanceof RespError ? `refused: ${r.message}` : 'has no such setting'}); ${why} needs "${KEYSPACE_EVENTS}" to follow live changes, and checks it with a probe key when it starts`,
        remedy: keyspaceEventsRemedy(null),
      });
      continue;
    }
    const missing = missingKeyspaceEvents(current);
    if (missing === '') {
      ready.push(`${m.address} ("${current}")`);
      continue;
    }
    findings.push({
      id: 'keyspace-notifications',
      severity,
      side: 'source',
      node: m.address,
      message: `source ${m.address}: notify-keyspace-events is "${current}", without ${[...missing].join(' ')}; ${why} needs them to follow live changes, and stops until they are set`,
      remedy: keyspaceEventsRemedy(current),
    });
  }
  if (ready.length > 0) {
    findings.push({ id: 'keyspace-notifications', severity: 'info', side: 'source', message: `keyspace notifications as the scan source needs them on ${ready.join(', ')}`, remedy: '' });
  }
  return findings;
}
