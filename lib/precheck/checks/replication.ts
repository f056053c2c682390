/**
 * May the configured source user replicate, on every master? A replica sends PING, REPLCONF
 * and PSYNC (SYNC on old masters). PSYNC itself cannot be tried: it starts a full sync on the
 * source (a fork and an RDB). So, in order of certainty:
 *
 * 1. `ACL DRYRUN <user> <command…>` (7.0+), when the user may run it: the server's own verdict;
 * 2. `ACL WHOAMI` + `ACL GETUSER` + `COMMAND INFO` (6.0+): the user's rules, evaluated against
 *    the commands' ACL categories;
 * 3. before 6.0 there are no ACLs: an authenticated client may run anything not renamed;
 * 4. else `REPLCONF listening-port 0` on a connection of its own, as a replica sends it: a
 *    NOPERM or unknown-command refusal is certain, an OK says nothing about PSYNC.
 *
 * Renamed or disabled commands (managed services do this to PSYNC and SYNC) show as unknown in
 * COMMAND INFO or in the refusal.
 */
import { resolveAuth } from '../../endpoint';
import { RespError } from '../../resp/errors';
import type { RespValue } from '../../resp/parser';
import { compareVersions, parseVersion, type Version } from '../../server/info';
import type { ProbeConnection } from '../connection';
import type { MasterState, PrecheckContext } from '../context';
import type { Finding } from '../types';
import { text } from '../values';

/** What a replica sends, as [command, args…]; the first argument matters for `+cmd|arg` rules. */
const REPLICA_COMMANDS: string[][] = [['PING'], ['REPLCONF', 'listening-port', '0'], ['PSYNC', '?', '-1']];

type Verdict =
  | { outcome: 'allowed'; method: string }
  | { outcome: 'denied'; method: string; command: string; reason: string }
  | { outcome: 'unverified'; method: string; reason: string };

const PERMISSION_REMEDY = (user: string): string =>
  `grant the user what a replica needs: ACL SETUSER ${user} +psync +replconf +ping (for a cluster source also +info +cluster|shards +cluster|slots +cluster|nodes); on a managed service, ask for an account allowed to replicate (some providers grant one only on request)`;

export async function replicationPermission(ctx: PrecheckContext): Promise<Finding[]> {
  const masters = ctx.source.reachableMasters();
  const configured = resolveAuth(ctx.source.config.username, ctx.source.config.password)?.username ?? 'default';
  const results = await Promise.all(
    masters.map(async (m) => {
      const commands = await commandTable(m.conn as ProbeConnection);
      const user = (await whoami(m.conn as ProbeConnection)) ?? configured;
      const verdict = await verify(ctx, m, user, commands);
      return { m, user, commands, verdict };
    }),
  );
  const findings: Finding[] = [];
  /** Masters where the user may replicate, by the method that told. */
  const allowed = new Map<string, string[]>();
  for (const { m, user, commands, verdict } of results) {
    const at = { side: 'source' as const, node: m.address };
    const disabled = disabledCommands(commands, verdict);
    if (disabled !== null) {
      const remedy = disabled.severity === 'error' ? DISABLED_REMEDY : 'to resume after a disconnect without a new full sync, ask the provider to enable PSYNC';
      findings.push({ id: 'replication-commands', ...at, ...disabled, remedy });
      if (disabled.severity === 'error') continue;
    }
    if (m.conn?.pingRefused) {
      findings.push({
        id: 'replication-permission',
        severity: 'error',
        ...at,
        message: `source ${m.address}: user ${user} may not run PING (${m.conn.pingRefused.message}), which a replica sends first`,
        remedy: PERMISSION_REMEDY(user),
      });
      continue;
    }
    switch (verdict.outcome) {
      case 'allowed':
        allowed.set(verdict.method, [...(allowed.get(verdict.method) ?? []), m.address]);
        break;
      case 'denied':
        findings.push({
          id: 'replication-permission',
          severity: 'error',
          ...at,
          message: `source ${m.address}: user ${user} may not run ${verdict.command}: ${verdict.reason} (checked with ${verdict.method})`,
          remedy: PERMISSION_REMEDY(user),
        });
        break;
      case 'unverified':
        findings.push({
          id: 'replication-permission',
          severity: 'warning',
          ...at,
          message: `source ${m.address}: ${verdict.reason} (checked with ${verdict.method}); whether user ${user} may run PSYNC cannot be tested without starting a full sync`,
          remedy: `make sure the user has +psync, or let an administrator run ACL DRYRUN ${user} PSYNC ? -1 on each master`,
        });
        break;
    }
  }
  for (const [method, addresses] of allowed) {
    findings.push({
      id: 'replication-permission',
      severity: 'info',
      side: 'source',
      message: `user ${results[0].user} may run PING, REPLCONF and PSYNC on ${addresses.length === 1 ? addresses[0] : `${addresses.length} masters (${addresses.join(', ')})`} (checked with ${method})`,
      remedy: '',
    });
  }
  return findings;
}

const DISABLED_REMEDY =
  'the replica source needs REPLCONF and PSYNC (or SYNC) under their own names: ask the provider to enable replication access (managed services such as ElastiCache, Azure Cache for Redis and Memorystore disable it; some enable it on request), or use the provider\'s own migration tool';

/** COMMAND INFO of the replica's commands: true = known, false = unknown (renamed or disabled), with ACL categories; null when COMMAND is refused. */
type CommandTable = Map<string, { known: boolean; categories: string[] | undefined }> | null;

async function commandTable(conn: ProbeConnection): Promise<CommandTable> {
  const names = ['PING', 'REPLCONF', 'PSYNC', 'SYNC'];
  const r = await conn.call(['COMMAND', 'INFO', ...names]);
  if (!Array.isArray(r)) return null;
  const table = new Map<string, { known: boolean; categories: string[] | undefined }>();
  names.forEach((name, i) => {
    const entry = r[i];
    if (!Array.isArray(entry)) {
      table.set(name, { known: false, categories: undefined });
      return;
    }
    // The seventh element (6.0+) holds the ACL categories, as "@admin" strings.
    const cats = Array.isArray(entry[6]) ? entry[6].map((c) => text(c).toLowerCase()) : undefined;
    table.set(name, { known: true, categories: cats });
  });
  return table;
}

function disabledCommands(commands: CommandTable, verdict: Verdict): { severity: 'error' | 'warning'; message: string } | null {
  const unknown = (name: string): boolean => commands?.get(name)?.known === false || (verdict.outcome === 'denied' && verdict.command === name && /unknown command/i.test(verdict.reason));
  const how = commands === null ? 'its refusal' : 'COMMAND INFO';
  if (unknown('REPLCONF')) return { severity: 'error', message: `REPLCONF is unknown to this server (${how}): renamed or disabled, so no replica can attach` };
  if (unknown('PSYNC') && unknown('SYNC')) return { severity: 'error', message: `PSYNC and SYNC are unknown to this server (${how}): renamed or disabled, so no replica can attach` };
  if (unknown('PSYNC')) return { severity: 'warning', message: `PSYNC is unknown to this server (${how}) but SYNC is not: every connection, even after a short disconnect, starts a new full sync` };
  return null;
}

async function whoami(conn: ProbeConnection): Promise<string | undefined> {
  const r = await conn.call(['ACL', 'WHOAMI']);
  return r instanceof RespError || r === null ? undefined : text(r);
}

async function verify(ctx: PrecheckContext, m: MasterState, user: string, commands: CommandTable): Promise<Verdict> {
  const conn = m.conn as ProbeConnection;
  const version = parseVersion(m.info?.redis_version);
  const atLeast = (v: Version): boolean => version !== undefined && compareVersions(version, v) >= 0;
  if (atLeast([7, 0, 0])) {
    const verdict = await dryRun(conn, user);
    if (verdict !== null) return verdict;
  }
  if (atLeast([6, 0, 0])) {
    const verdict = await evaluateRules(conn, user, commands);
    if (verdict !== null) return verdict;
  } else if (version !== undefined) {
    return { outcome: 'allowed', method: `no ACLs before Redis 6 (this is ${version.join('.')})` };
  }
  return replconfProbe(ctx, m);
}

async function dryRun(conn: ProbeConnection, user: string): Promise<Verdict | null> {
  const method = 'ACL DRYRUN';
  for (const args of REPLICA_COMMANDS) {
    const r = await conn.call(['ACL', 'DRYRUN', user, ...args]);
    // Refused to us (NOPERM), or not this server's ACL: the next method decides.
    if (r instanceof RespError) return null;
    if (r !== 'OK') return { outcome: 'denied', method, command: args[0], reason: text(r) };
  }
  return { outcome: 'allowed', method };
}

async function evaluateRules(conn: ProbeConnection, user: string, commands: CommandTable): Promise<Verdict | null> {
  const r = await conn.call(['ACL', 'GETUSER', user]);
  if (r instanceof RespError || !Array.isArray(r)) return null;
  const fields = new Map<string, RespValue>();
  for (let i = 0; i + 1 < r.length; i += 2) fields.set(text(r[i]), r[i + 1]);
  const rules = text(fields.get('commands') ?? null);
  const selectors = fields.get('selectors');
  const method = 'ACL GETUSER rules with COMMAND INFO categories';
  for (const [name, ...args] of REPLICA_COMMANDS) {
    const allowed = aclAllows(rules, name, args[0], commands?.get(name)?.categories);
    // A selector (7.0+) may grant what the root rules deny; only the server could tell.
    if (allowed === undefined || (!allowed && Array.isArray(selectors) && selectors.length > 0)) return null;
    if (!allowed) return { outcome: 'denied', method, command: name, reason: `its rules are "${rules}"` };
  }
  return { outcome: 'allowed', method };
}

/**
 * Whether ACL command rules (as ACL GETUSER lists them: `+@all -psync`, `-@all +replconf|listening-port`)
 * let `command firstArg` run; undefined when a category rule decides and the categories are unknown.
 */
export function aclAllows(rules: string, command: string, firstArg: string | undefined, categories: string[] | undefined): boolean | undefined {
  const name = command.toLowerCase();
  let allowed = false;
  for (const token of rules.split(/\s+/).filter((t) => t !== '')) {
    if (token === 'allcommands') allowed = true;
    else if (token === 'nocommands') allowed = false;
    if (token[0] !== '+' && token[0] !== '-') continue;
    const grant = token[0] === '+';
    const body = token.slice(1).toLowerCase();
    if (body === '@all') allowed = grant;
    else if (body.startsWith('@')) {
      if (categories === undefined) return undefined;
      if (categories.includes(body)) allowed = grant;
    } else if (body.includes('|')) {
      const [cmd, arg] = body.split('|');
      if (cmd === name && arg === firstArg?.toLowerCase()) allowed = grant;
    } else if (body === name) allowed = grant;
  }
  return allowed;
}

async function replconfProbe(ctx: PrecheckContext, m: MasterState): Promise<Verdict> {
  const method = 'REPLCONF listening-port 0 on a connection of its own';
  const conn = await ctx.source.open(m);
  try {
    const r = await conn.call(['REPLCONF', 'listening-port', '0']);
    if (r instanceof RespError) return { outcome: 'denied', method, command: 'REPLCONF', reason: r.message };
    return { outcome: 'unverified', method, reason: 'REPLCONF is allowed, and ACL DRYRUN and ACL GETUSER are not permitted to this user' };
  } finally {
    conn.close();
  }
}
