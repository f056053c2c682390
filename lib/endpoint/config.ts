/**
 * Where a Redis is and how to log in to it: the engine-side description of an endpoint,
 * its validation, and the reading of the flat settings an editor form stores.
 */
import net from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export interface EndpointTls {
  enabled: boolean;
  /** PEM. Given, it replaces the system's trusted roots, as a private CA needs. */
  ca?: string;
  /** PEM client certificate, for servers that require one (`tls-auth-clients yes`). */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
  /** The name to send as SNI and to check the certificate against, instead of the address dialled. */
  servername?: string;
  /** Off accepts any certificate: for tests and private networks only. Default on. */
  verify?: boolean;
}

interface EndpointCommon {
  /**
   * An ACL user (Redis 6+). Empty means the password alone is sent (`AUTH <password>`), which
   * Redis 6+ treats as the user `default`. 'default' itself is sent the same way, so it also
   * works with servers older than 6 (see resolveAuth for why that matters).
   */
  username?: string;
  /** Also accepted as `user:password` when username is empty (see resolveAuth). */
  password?: string;
  tls?: EndpointTls;
  /** How long establishing a connection may take. Default DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
}

export interface StandaloneEndpointConfig extends EndpointCommon {
  mode: 'standalone';
  host: string;
  port: number;
  /** Default 0. */
  db?: number;
}

export interface ClusterEndpointConfig extends EndpointCommon {
  mode: 'cluster';
  /** Any reachable nodes of the cluster: the client learns the rest from CLUSTER SLOTS. */
  seeds: HostPort[];
}

export type EndpointConfig = StandaloneEndpointConfig | ClusterEndpointConfig;

/**
 * What a node using an endpoint gets from the redis-endpoint config node. Nodes do not share
 * connections: each opens its own from `config` (a replica link, pipelines, a check's socket).
 */
export interface EndpointHandle {
  readonly config: EndpointConfig;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** What AUTH gets: with no username, the one-argument form that every Redis version knows. */
export interface AuthPair {
  username?: string;
  password: string;
}

/**
 * The credentials to send, after two conveniences:
 *
 * - Managed Redis consoles hand out `user:password` as one string, so when username is empty
 *   and the password holds a colon, it is split at the FIRST colon (passwords with colons are
 *   more common than usernames with them; such a username goes in the username field). This
 *   is ambiguous with a legacy `requirepass` password that itself contains a colon: set the
 *   username to `default` to send such a password whole.
 * - The username `default` is dropped, sending `AUTH <password>`: Redis 6+ reads that as the
 *   user `default` anyway, and Redis before 6 knows no other form (it answers the two-argument
 *   AUTH with a wrong-number-of-arguments error, which ioredis only logs).
 */
export function resolveAuth(username: string | undefined, password: string | undefined): AuthPair | undefined {
  let user = username ?? '';
  let pass = password ?? '';
  if (user === '') {
    const colon = pass.indexOf(':');
    if (colon > 0) {
      user = pass.slice(0, colon);
      pass = pass.slice(colon + 1);
    }
  }
  if (user === 'default') user = '';
  if (user === '' && pass === '') return undefined;
  // A username with an empty password is legitimate: an ACL user with `nopass` accepts any.
  return user === '' ? { password: pass } : { username: user, password: pass };
}

/**
 * Parses "host:port" seeds separated by commas, whitespace or newlines; IPv6 addresses go in
 * brackets ("[::1]:7000"). Duplicates are dropped. Throws an Error naming the first bad entry.
 */
export function parseSeeds(text: string): HostPort[] {
  const entries = text.split(/[\s,]+/).filter((e) => e !== '');
  if (entries.length === 0) throw new Error('no seeds: expected one or more host:port entries, e.g. "10.0.0.1:7000, 10.0.0.2:7000"');
  const seeds: HostPort[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const where = `seed ${i + 1} "${entry}"`;
    const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(entry);
    if (match === null) {
      const hint = (entry.match(/:/g) ?? []).length > 1 ? ' (put an IPv6 address in brackets: [::1]:7000)' : '';
      throw new Error(`${where}: expected host:port${hint}`);
    }
    const host = match[1] ?? match[2];
    const hostProblem = match[1] === undefined ? checkHost(host) : net.isIPv6(host) ? undefined : 'in brackets is not an IPv6 address';
    if (hostProblem !== undefined) throw new Error(`${where}: host ${hostProblem}`);
    const port = toPort(match[3]);
    if (port === undefined) throw new Error(`${where}: port must be an integer from 1 to 65535`);
    const key = `${host}:${port}`;
    if (!seen.has(key)) {
      seen.add(key);
      seeds.push({ host, port });
    }
  });
  return seeds;
}

/** Problems with the config, each naming its field; empty when it is usable. */
export function validateEndpointConfig(cfg: EndpointConfig): string[] {
  const problems: string[] = [];
  // Checked at run time too: configs come from editor JSON and hand-written code alike.
  const mode: string = cfg.mode;
  if (cfg.mode === 'standalone') {
    const hostProblem = typeof cfg.host === 'string' ? checkHost(cfg.host) : 'is required';
    if (hostProblem !== undefined) problems.push(`host: ${hostProblem}`);
    if (!isPort(cfg.port)) problems.push(`port: must be an integer from 1 to 65535, got ${show(cfg.port)}`);
    if (cfg.db !== undefined && !(Number.isSafeInteger(cfg.db) && cfg.db >= 0)) {
      problems.push(`db: must be an integer of 0 or more, got ${show(cfg.db)}`);
    }
  } else if (cfg.mode === 'cluster') {
    if (!Array.isArray(cfg.seeds) || cfg.seeds.length === 0) problems.push('seeds: at least one host:port is required');
    else {
      cfg.seeds.forEach((seed, i) => {
        const hostProblem = typeof seed.host === 'string' ? checkHost(seed.host) : 'is required';
        if (hostProblem !== undefined) problems.push(`seeds: seed ${i + 1} host ${hostProblem}`);
        if (!isPort(seed.port)) problems.push(`seeds: seed ${i + 1} port must be an integer from 1 to 65535, got ${show(seed.port)}`);
      });
    }
    const db = (cfg as { db?: unknown }).db;
    if (db !== undefined && db !== 0) problems.push(`db: a cluster has only database 0, got ${show(db)}`);
  } else {
    problems.push(`mode: must be "standalone" or "cluster", got ${show(mode)}`);
  }
  if (cfg.connectTimeoutMs !== undefined && !(Number.isSafeInteger(cfg.connectTimeoutMs) && cfg.connectTimeoutMs > 0)) {
    problems.push(`connectTimeoutMs: must be a positive integer of milliseconds, got ${show(cfg.connectTimeoutMs)}`);
  }
  if (cfg.tls?.enabled) problems.push(...validateTls(cfg.tls));
  return problems;
}

function validateTls(tls: EndpointTls): string[] {
  const problems: string[] = [];
  for (const field of ['ca', 'cert', 'key'] as const) {
    const pem = tls[field];
    if (pem !== undefined && pem.trim() !== '' && !/-----BEGIN [A-Z0-9 ]+-----/.test(pem)) {
      problems.push(`tls.${field}: not PEM text (expected a "-----BEGIN ...-----" block)`);
    }
  }
  const hasCert = (tls.cert ?? '').trim() !== '';
  const hasKey = (tls.key ?? '').trim() !== '';
  if (hasCert !== hasKey) problems.push(`tls.${hasCert ? 'key' : 'cert'}: a client certificate and its key go together`);
  // Node.js refuses an IP address as SNI (RFC 6066); a certificate for an IP is checked against the address dialled.
  if (tls.servername !== undefined && net.isIP(tls.servername) !== 0) {
    problems.push(`tls.servername: must be a DNS name, not an IP address (${tls.servername})`);
  }
  return problems;
}

/**
 * The flat shape an editor form stores (strings and booleans, as Node-RED keeps them), and
 * the credentials kept apart from it.
 */
export interface EndpointSettings {
  mode?: string;
  host?: string;
  port?: string | number;
  /** "host:port" entries, see parseSeeds. */
  seeds?: string;
  db?: string | number;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsServername?: string;
  tlsVerify?: boolean;
  connectTimeout?: string | number;
}

export interface EndpointCredentials {
  username?: string;
  password?: string;
  tlsKey?: string;
}

/**
 * Builds an EndpointConfig from form settings. Problems include what validateEndpointConfig
 * finds and text that does not parse (seeds, numbers), each named once.
 */
export function readEndpointSettings(
  settings: EndpointSettings,
  credentials: EndpointCredentials = {},
): { config: EndpointConfig; problems: string[] } {
  const parseProblems: string[] = [];
  const number = (field: string, value: string | number | undefined): number | undefined => {
    const n = toNumber(value);
    if (Number.isNaN(n)) parseProblems.push(`${field}: ${show(value)} is not a number`);
    return n;
  };
  const common: EndpointCommon = {
    username: nonEmpty(credentials.username),
    password: credentials.password === '' ? undefined : credentials.password,
    connectTimeoutMs: number('connectTimeoutMs', settings.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    tls: {
      enabled: settings.tls === true,
      ca: nonEmpty(settings.tlsCa),
      cert: nonEmpty(settings.tlsCert),
      key: nonEmpty(credentials.tlsKey),
      servername: nonEmpty(settings.tlsServername),
      verify: settings.tlsVerify !== false,
    },
  };
  let config: EndpointConfig;
  if (settings.mode === 'cluster') {
    let seeds: HostPort[] = [];
    try {
      seeds = parseSeeds(settings.seeds ?? '');
    } catch (err) {
      parseProblems.push(`seeds: ${(err as Error).message}`);
    }
    config = { ...common, mode: 'cluster', seeds };
  } else {
    config = {
      ...common,
      // Any other value is left for validation to name.
      mode: (settings.mode ?? 'standalone') as 'standalone',
      host: (settings.host ?? '').trim(),
      // A missing port is as wrong as a bad one: there is no default to fall back on silently.
      port: number('port', settings.port) ?? NaN,
      db: number('db', settings.db) ?? 0,
    };
  }
  const parsedBadly = new Set(parseProblems.map(fieldOf));
  const validated = validateEndpointConfig(config).filter((p) => !parsedBadly.has(fieldOf(p)));
  return { config, problems: [...parseProblems, ...validated] };
}

function fieldOf(problem: string): string {
  return problem.slice(0, problem.indexOf(':'));
}

/** A short description for labels and messages: host:port, or the seeds of a cluster. */
export function describeEndpoint(cfg: EndpointConfig): string {
  if (cfg.mode === 'cluster') return `cluster ${cfg.seeds.map((s) => formatHostPort(s.host, s.port)).join(',')}`;
  return formatHostPort(cfg.host, cfg.port);
}

export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function checkHost(host: string): string | undefined {
  if (host === '') return 'is required';
  if (net.isIPv6(host)) return undefined;
  if (host.includes(':')) return `"${host}" is not a hostname or IP address (the port has a field of its own)`;
  if (/[\s,/@[\]]/.test(host)) return `"${host}" is not a hostname or IP address`;
  return undefined;
}

function isPort(port: unknown): boolean {
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
}

function toPort(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const port = Number(text);
  return isPort(port) ? port : undefined;
}

/** Empty means "not set" (the default applies); text that is not a number gives NaN. */
function toNumber(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  const text = value.trim();
  return text === '' ? undefined : Number(text);
}

function nonEmpty(value: string | undefined): string | undefined {
  const text = value?.trim();
  return text === undefined || text === '' ? undefined : text;
}

function show(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : String(value);
}
