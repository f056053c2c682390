/**
 * Turning an EndpointConfig into connections: ioredis clients for commands, and the options a
 * raw socket needs (the replica link speaks the replication protocol itself, not through ioredis).
 */
import type net from 'node:net';
import type tls from 'node:tls';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SyncError } from '../errors';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  resolveAuth,
  validateEndpointConfig,
  type AuthPair,
  type EndpointConfig,
  type EndpointTls,
  type HostPort,
} from './config';

/** What createClient builds, for callers that need options of their own on top. */
export type IoRedisTarget =
  | { mode: 'standalone'; options: RedisOptions }
  | { mode: 'cluster'; seeds: HostPort[]; options: ClusterOptions };

/** Options Redis and Cluster share: for a cluster they go into redisOptions, used for every node. */
type NodeOptions = Pick<RedisOptions, 'username' | 'password' | 'tls' | 'connectTimeout'>;

export function toIoRedisOptions(cfg: EndpointConfig): IoRedisTarget {
  const auth = resolveAuth(cfg.username, cfg.password);
  const connectTimeout = cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const node: NodeOptions = { connectTimeout };
  if (auth?.username !== undefined) node.username = auth.username;
  if (auth !== undefined) node.password = auth.password;
  const tlsOptions = toTlsOptions(cfg.tls);
  if (tlsOptions !== undefined) node.tls = tlsOptions;
  if (cfg.mode === 'cluster') {
    return {
      mode: 'cluster',
      seeds: cfg.seeds.map(({ host, port }) => ({ host, port })),
      // CLUSTER SLOTS gets the time a connection gets: the 1 s default is short for a remote TLS cluster.
      options: { redisOptions: node, slotsRefreshTimeout: connectTimeout },
    };
  }
  return { mode: 'standalone', options: { ...node, host: cfg.host, port: cfg.port, db: cfg.db ?? 0 } };
}

/**
 * A connected (connecting) ioredis client. Throws when the config has problems, naming them.
 * ioredis 6 negotiates RESP3 (HELLO 3) and falls back to RESP2 on servers before 6; replies
 * keep their RESP2 shapes either way.
 */
export function createClient(cfg: EndpointConfig): Redis | Cluster {
  assertValid(cfg);
  const target = toIoRedisOptions(cfg);
  return target.mode === 'cluster' ? new Cluster(target.seeds, target.options) : new Redis(target.options);
}

/**
 * A connection to one node of the endpoint (a cluster's nodes are discovered, not configured),
 * connected when it resolves, with no retries: the caller decides what a failure means.
 */
export function connectNode(cfg: EndpointConfig, host: string, port: number): Promise<Redis> {
  const so = toSocketOptions(cfg, host, port);
  const client = new Redis({
    host,
    port,
    username: so.auth?.username,
    password: so.auth?.password,
    tls: so.tls ? so.connect : undefined,
    connectTimeout: so.connectTimeoutMs,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // ioredis rejects a failed connect with "Connection is closed."; the reason (WRONGPASS, a reset …) came as an event
  let reason: Error | null = null;
  client.on('error', (err: Error) => (reason = err));
  return client.connect().then(
    () => client,
    (err: unknown) => {
      throw reason ?? err;
    },
  );
}

interface SocketCommon {
  /** Send AUTH with these before anything else; undefined means the server needs none. */
  auth?: AuthPair;
  /** Give up on the connection (TCP and TLS handshake) after this long. */
  connectTimeoutMs: number;
}

/** Options for net.connect (tls false) or tls.connect (tls true), and what to AUTH with. */
export type SocketOptions =
  | (SocketCommon & { tls: false; connect: net.TcpNetConnectOpts })
  | (SocketCommon & { tls: true; connect: tls.ConnectionOptions & { host: string; port: number } });

/**
 * Options for a raw connection to one node of the endpoint; host and port come from the caller
 * because a cluster's nodes are discovered, not configured.
 */
export function toSocketOptions(cfg: EndpointConfig, host: string, port: number): SocketOptions {
  const common: SocketCommon = { connectTimeoutMs: cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
  const auth = resolveAuth(cfg.username, cfg.password);
  if (auth !== undefined) common.auth = auth;
  const tlsOptions = toTlsOptions(cfg.tls);
  return tlsOptions === undefined
    ? { ...common, tls: false, connect: { host, port } }
    : { ...common, tls: true, connect: { ...tlsOptions, host, port } };
}

function toTlsOptions(cfg: EndpointTls | undefined): tls.ConnectionOptions | undefined {
  if (cfg?.enabled !== true) return undefined;
  const options: tls.ConnectionOptions = { rejectUnauthorized: cfg.verify !== false };
  // Empty text means "not set", as the editor's empty fields do.
  if (cfg.ca) options.ca = cfg.ca;
  if (cfg.cert) options.cert = cfg.cert;
  if (cfg.key) options.key = cfg.key;
  if (cfg.servername) options.servername = cfg.servername;
  return options;
}

function assertValid(cfg: EndpointConfig): void {
  const problems = validateEndpointConfig(cfg);
  if (problems.length > 0) throw new SyncError('CONFIG', `invalid Redis endpoint: ${problems.join('; ')}`);
}
