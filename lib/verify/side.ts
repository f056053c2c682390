/**
 * One side of a verification: a pipelined connection to every master of an endpoint
 * (standalone or cluster), and the reads the comparison needs: SCAN with COUNT on one master,
 * and PTTL + DUMP of any key (routed by its slot). Never KEYS, never a blocking command.
 */
import { formatHostPort, toSocketOptions, type EndpointConfig } from '../endpoint';
import { SLOT_COUNT, slotOf } from '../cluster/slots';
import { discoverTopology, type RedisLike } from '../cluster/topology';
import { SyncError } from '../errors';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import { NodeConnection } from '../sink/connection';
import { parseInfo } from '../server/info';

/** A key of one db. */
export interface DbKey {
  db: number;
  key: Buffer;
}

/** What one side holds for a key, read with PTTL and DUMP in one round trip. */
export interface KeyRead {
  /** The DUMP payload, null when the key does not exist (or expired between the two reads). */
  payload: Buffer | null;
  /** Absolute expiry in ms (the read's time + PTTL), null when the key does not expire. */
  expireMs: number | null;
  /** The server refused one of the reads (e.g. MOVED during resharding, NOPERM): said, and the key read again in a later round. */
  error: string | null;
}

export interface Master {
  address: string;
  conn: NodeConnection;
  /** The db of the last SELECT sent (commands are pipelined: what the next command runs in). */
  db: number;
  /** Why the last SELECT answered was refused (a db the server lacks), null when it was not: replies after it are not of that db. */
  selectError: string | null;
}

export class VerifySide {
  mode: 'standalone' | 'cluster' = 'standalone';
  masters: Master[] = [];
  private slotMap: Master[] = [];

  private constructor(
    readonly name: 'source' | 'destination',
    private readonly endpoint: EndpointConfig,
  ) {}

  /** Connects to every master (a cluster's found with CLUSTER SHARDS/SLOTS/NODES, as the replica source finds them). */
  static async open(name: 'source' | 'destination', endpoint: EndpointConfig): Promise<VerifySide> {
    const side = new VerifySide(name, endpoint);
    try {
      await side.connect();
    } catch (err) {
      side.close();
      throw err;
    }
    return side;
  }

  private async connect(): Promise<void> {
    const cfg = this.endpoint;
    const seeds = cfg.mode === 'cluster' ? cfg.seeds : [{ host: cfg.host, port: cfg.port }];
    const topology = await discoverTopology((host, port) => this.rawClient(host, port), seeds, {
      timeoutMs: cfg.connectTimeoutMs,
      tls: cfg.tls?.enabled === true,
    }).catch((err: Error) => {
      // keeps the code (AUTH, TLS…) of the connection that failed, which a node's red status names
      throw new SyncError(codeOf(err.cause ?? err), `the ${this.name} cannot be reached: ${err.message}`, { cause: err });
    });
    // a cluster endpoint that finds a standalone server is a wrong endpoint, not a one-shard cluster
    if (cfg.mode === 'cluster' && topology.mode !== 'cluster') {
      const at = `${topology.answeredBy.host}:${topology.answeredBy.port}`;
      throw new Error(`the ${this.name} is set up as a cluster, but ${at} is a standalone server (cluster_enabled:0): give it as ${cfg.tls?.enabled === true ? 'rediss' : 'redis'}://${at}`);
    }
    this.mode = topology.mode;
    const byAddress = new Map<string, Master>();
    this.slotMap = new Array<Master>(SLOT_COUNT);
    for (const shard of topology.shards) {
      const address = formatHostPort(shard.master.host, shard.master.port);
      let m = byAddress.get(address);
      if (m === undefined) {
        m = { address, conn: await this.openConnection(shard.master.host, shard.master.port), db: 0, selectError: null };
        byAddress.set(address, m);
        this.masters.push(m);
      }
      for (const [from, to] of shard.slots) for (let s = from; s <= to; s++) this.slotMap[s] = m;
    }
    if (this.masters.length === 0) throw new Error(`the ${this.name} has no master that serves slots`);
  }

  private async openConnection(host: string, port: number): Promise<NodeConnection> {
    const so = toSocketOptions(this.endpoint, host, port);
    const conn = new NodeConnection({ host, port, tls: so.tls ? so.connect : null, username: so.auth?.username, password: so.auth?.password, connectTimeoutMs: so.connectTimeoutMs });
    try {
      await conn.connect();
    } catch (err) {
      conn.close();
      // the connection is the sink's: its remedy names the destination endpoint, whichever side this is
      const message = (err as Error).message.replace(/\s*\((check|set) the username and password of the destination endpoint\)$/, ` (check the username and password of the ${this.name})`);
      throw new SyncError(codeOf(err), message, { cause: err });
    }
    return conn;
  }

  /** A connection for topology discovery, whose replies come as strings as ioredis gives them. */
  private async rawClient(host: string, port: number): Promise<RedisLike> {
    const conn = await this.openConnection(host, port);
    return {
      call: async (...args: Array<string | number>) => {
        const r = await conn.call(args);
        if (r instanceof RespError) throw r;
        return textual(r);
      },
      disconnect: () => conn.close(),
    };
  }

  /** The dbs of a master that hold keys (INFO keyspace); a cluster has db 0 only. */
  async dbsWithKeys(m: Master): Promise<Map<number, number>> {
    return this.named(this.dbsWithKeysUnnamed(m));
  }

  private async dbsWithKeysUnnamed(m: Master): Promise<Map<number, number>> {
    const reply = await m.conn.call(['INFO', 'keyspace']);
    if (reply instanceof RespError) throw new SyncError(reply.code, `${this.name} ${m.address}: INFO keyspace: ${reply.message}`);
    const out = new Map<number, number>();
    for (const [name, value] of Object.entries(parseInfo(String(reply)))) {
      const db = /^db(\d+)$/.exec(name);
      const keys = /(?:^|,)keys=(\d+)/.exec(value);
      if (db !== null && keys !== null) out.set(Number(db[1]), Number(keys[1]));
    }
    return out;
  }

  /** One SCAN step of a master's db: the next cursor ('0' at the end) and the keys. */
  async scan(m: Master, db: number, cursor: string, count: number, match?: string): Promise<{ cursor: string; keys: Buffer[] }> {
    return this.named(this.scanUnnamed(m, db, cursor, count, match));
  }

  private async scanUnnamed(m: Master, db: number, cursor: string, count: number, match?: string): Promise<{ cursor: string; keys: Buffer[] }> {
    this.select(m, db);
    const reply = await m.conn.call(match ? ['SCAN', cursor, 'MATCH', match, 'COUNT', count] : ['SCAN', cursor, 'COUNT', count]);
    if (m.selectError !== null) throw new SyncError('SELECT', `${this.name} ${m.address}: ${m.selectError}`);
    if (reply instanceof RespError) throw new SyncError(reply.code, `${this.name} ${m.address}: SCAN in db ${db}: ${reply.message}`);
    const [next, keys] = reply as [Buffer, Buffer[]];
    return { cursor: next.toString(), keys };
  }

  /** PTTL and DUMP of every key, pipelined on the masters that serve them; in the order given. */
  async read(keys: readonly DbKey[]): Promise<KeyRead[]> {
    return this.named(this.readUnnamed(keys));
  }

  private async readUnnamed(keys: readonly DbKey[]): Promise<KeyRead[]> {
    const out: KeyRead[] = new Array<KeyRead>(keys.length);
    const used = new Set<Master>();
    keys.forEach((k, i) => {
      const m = this.masterOf(k.key);
      used.add(m);
      this.select(m, k.db);
      const r: KeyRead = { payload: null, expireMs: null, error: null };
      out[i] = r;
      let readAt = 0;
      m.conn.send(['PTTL', k.key], (reply) => {
        readAt = Date.now();
        if (m.selectError !== null) r.error = m.selectError;
        else if (reply instanceof RespError) r.error = `PTTL: ${reply.message}`;
        else if (typeof reply === 'number' && reply >= 0) r.expireMs = readAt + reply;
      });
      m.conn.send(['DUMP', k.key], (reply) => {
        if (m.selectError !== null) return;
        if (reply instanceof RespError) r.error ??= `DUMP: ${reply.message}`;
        else if (Buffer.isBuffer(reply)) r.payload = reply;
      });
    });
    await Promise.all([...used].map((m) => m.conn.replied()));
    // a key that expired between the two reads is gone
    for (const r of out) if (r.payload === null) r.expireMs = null;
    return out;
  }

  /** Which of the keys exist (EXISTS each, pipelined), in the order given. */
  async exists(keys: readonly DbKey[]): Promise<boolean[]> {
    return this.named(this.existsUnnamed(keys));
  }

  private async existsUnnamed(keys: readonly DbKey[]): Promise<boolean[]> {
    const out: boolean[] = new Array<boolean>(keys.length).fill(false);
    const used = new Set<Master>();
    keys.forEach((k, i) => {
      const m = this.masterOf(k.key);
      used.add(m);
      this.select(m, k.db);
      m.conn.send(['EXISTS', k.key], (reply) => {
        out[i] = m.selectError === null && reply === 1;
      });
    });
    await Promise.all([...used].map((m) => m.conn.replied()));
    return out;
  }

  masterOf(key: Buffer): Master {
    return this.mode === 'cluster' ? this.slotMap[slotOf(key)] : this.masters[0];
  }

  private select(m: Master, db: number): void {
    if (m.db === db) return;
    m.conn.send(['SELECT', db], (reply) => {
      m.selectError = reply instanceof RespError ? `SELECT ${db}: ${reply.message}` : null;
    });
    m.db = db;
  }

  /** A connection that broke mid-verify says which side it was, with a code a red status names. */
  private async named<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if (err instanceof SyncError) throw err;
      throw new SyncError('CONNECT', `the ${this.name} broke off: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    for (const m of this.masters) m.conn.close();
    this.masters = [];
  }
}

function textual(v: RespValue): unknown {
  if (Buffer.isBuffer(v)) return v.toString();
  if (Array.isArray(v)) return v.map(textual);
  return v;
}

/** A SyncError's code, else a Node socket error's (ECONNREFUSED…), else CONNECT. */
function codeOf(err: unknown): string {
  if (err instanceof SyncError) return err.statusCode;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'CONNECT';
}
