/**
 * The dbs of the source, and the commands that move data between dbs (MOVE, SWAPDB, COPY …
 * DB), against the dbs the destination has: a cluster db 0 only, a server its `databases`.
 * What the destination has no db for is dropped by the sink and counted, never a stop
 * (lib/sink/dbs.ts); this says beforehand which of it this source may send. Which commands
 * a source runs is read from INFO commandstats, counted since it started (or CONFIG
 * RESETSTAT): a command it never ran there may still come, which the messages say.
 */
import { RespError } from '../../resp/errors';
import type { ProbeConnection } from '../connection';
import type { PrecheckContext } from '../context';
import type { Finding } from '../types';
import { configValue, text } from '../values';

/** The commands counted, by name as INFO commandstats has them (cmdstat_<name>). */
const COMMANDS = ['move', 'swapdb', 'copy'] as const;
const times = (n: number): string => `${n} time${n === 1 ? '' : 's'}`;
export type DbCommandCalls = Record<(typeof COMMANDS)[number], number>;

export interface DbFacts {
  source: {
    address: string;
    cluster: boolean;
    /** Keys per db (INFO keyspace). */
    keys: Map<number, number>;
    /** Calls since the source started (INFO commandstats); null where it could not be read. */
    calls: DbCommandCalls | null;
  };
  destination: {
    cluster: boolean;
    /** A server's `databases` (null: it could not be read); not read for a cluster. */
    databases: number | null;
  };
}

export async function databases(ctx: PrecheckContext): Promise<Finding[]> {
  const [src] = ctx.source.reachableMasters();
  const [dst] = ctx.destination.reachableMasters();
  if (src === undefined || dst === undefined) return [];
  const sourceCluster = ctx.source.topology?.mode === 'cluster';
  const destinationCluster = ctx.destination.topology?.mode === 'cluster';
  const keys = new Map<number, number>();
  for (const [field, value] of Object.entries(ctx.source.info(src))) {
    const db = /^db(\d+)$/.exec(field);
    if (db !== null) keys.set(Number(db[1]), Number(/keys=(\d+)/.exec(value)?.[1] ?? 0));
  }
  let calls: DbCommandCalls | null = null;
  if (!sourceCluster) {
    const stats = await (src.conn as ProbeConnection).call(['INFO', 'commandstats']);
    if (!(stats instanceof RespError)) {
      const t = text(stats);
      calls = { move: 0, swapdb: 0, copy: 0 };
      for (const name of COMMANDS) calls[name] = Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(t)?.[1] ?? 0);
    }
  }
  let count: number | null = null;
  if (!destinationCluster) {
    const reply = await (dst.conn as ProbeConnection).call(['CONFIG', 'GET', 'databases']);
    const v = reply instanceof RespError ? undefined : configValue(reply, 'databases');
    count = v === undefined ? null : Number(v);
  }
  return databaseFindings({ source: { address: src.address, cluster: sourceCluster, keys, calls }, destination: { cluster: destinationCluster, databases: count } });
}

export function databaseFindings({ source, destination }: DbFacts): Finding[] {
  const base = { id: 'databases', side: 'source' as const, node: source.address };
  if (source.cluster) {
    return [{ ...base, severity: 'info', message: 'the source is a cluster: it has db 0 only and runs no MOVE or SWAPDB (not allowed in cluster mode)', remedy: '' }];
  }
  const held = (db: number): boolean => (destination.cluster ? db === 0 : destination.databases === null || db < destination.databases);
  const where = destination.cluster ? 'a cluster has db 0 only' : `the destination has ${destination.databases} dbs (databases)`;
  const since = 'INFO commandstats, since the source started or CONFIG RESETSTAT';
  const findings: Finding[] = [];
  const outside = [...source.keys].filter(([db, n]) => n > 0 && !held(db)).sort((a, b) => a[0] - b[0]);
  if (outside.length > 0) {
    const highest = outside[outside.length - 1][0];
    findings.push({
      ...base,
      severity: 'warning',
      message: `source ${source.address} holds keys in ${outside.map(([db, n]) => `db ${db} (${n} key${n === 1 ? '' : 's'})`).join(', ')}, which the destination does not have (${where}): unless a redis-op-filter maps these dbs into dbs it has, the sink drops their operations (counted in its status and stats.dropped)`,
      remedy: destination.cluster
        ? 'put a redis-op-filter before the sink with "every db to db 0" and a key prefix per db (db{db}:), or one that keeps only db 0 (Only dbs: 0)'
        : `raise databases on the destination to ${highest + 1} or more (redis.conf, then a restart), or remap these dbs with a redis-op-filter (Remap, e.g. ${outside[0][0]}:0)`,
    });
  }
  const c = source.calls;
  if (destination.cluster) {
    if (c === null) {
      findings.push({ ...base, severity: 'warning', message: `whether the source runs MOVE, SWAPDB or COPY … DB, which a cluster cannot carry out as they are, could not be told: INFO commandstats was refused`, remedy: 'grant the source user +info, or make sure its clients do not use these commands' });
    } else {
      if (c.swapdb > 0) {
        findings.push({
          ...base,
          severity: 'warning',
          message: `the source ran SWAPDB ${times(c.swapdb)} (${since}): a cluster cannot carry it out, with an op filter or without (with a key prefix per db it would rename every key of both dbs): each one is dropped and counted, and the dbs it swaps differ from the source's from then on`,
          remedy: 'stop using SWAPDB on the source while it is synced, or sync into a standalone destination, which runs it',
        });
      }
      if (c.move > 0 || c.copy > 0) {
        const ran = [c.move > 0 ? `MOVE ${times(c.move)}` : '', c.copy > 0 ? `COPY ${times(c.copy)}` : ''].filter((x) => x !== '').join(' and ');
        findings.push({
          ...base,
          severity: c.move > 0 ? 'warning' : 'info',
          message: `the source ran ${ran} (${since}): into a cluster, MOVE and COPY … DB between dbs are carried out only between dbs a redis-op-filter puts into db 0 with a key prefix per db (as RENAME and COPY between the prefixed names); otherwise a key moved out of db 0 is deleted there, and one moved or copied into db 0 from another db is dropped (counted), so db 0 lacks it`,
          remedy: 'put a redis-op-filter before the sink with "every db to db 0" and the key prefix db{db}:',
        });
      }
    }
  } else if (c !== null && outside.length === 0 && c.move + c.swapdb + c.copy > 0) {
    findings.push({ ...base, severity: 'info', message: `the source ran MOVE, SWAPDB and COPY ${times(c.move)}, ${times(c.swapdb)} and ${times(c.copy)} (${since}): the destination runs them as they come (the sink keeps its checkpoints in db 0 across a SWAPDB)`, remedy: '' });
  }
  if (findings.length > 0) return findings;
  const dbs = [...source.keys].filter(([, n]) => n > 0).map(([db]) => db).sort((a, b) => a - b);
  return [{
    ...base,
    severity: 'info',
    message: `${dbs.length === 0 ? 'the source holds no keys' : `the destination has every db the source holds keys in (db ${dbs.join(', ')})`}${c === null ? '' : '; the source ran no MOVE, SWAPDB or COPY'}`,
    remedy: '',
  }];
}
