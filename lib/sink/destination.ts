import { toSocketOptions, type EndpointConfig } from '../endpoint';
import { SLOT_COUNT } from '../cluster/slots';
import { parseClusterSlots, type ShardInfo } from '../cluster/topology';
import { rdbVersionOfServer } from '../rdb';
import type { CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import type { RespValue } from '../resp/parser';
import type { CommandOp } from '../ops/operation';
import { NodeConnection, type ConnectionOptions, type ReplyFailure } from './connection';
import { destinationForm, PROBED_COMMANDS, probedCommandsOf } from './destination-forms';
import { SinkError } from './errors';
import { FIELD_TTL_COMMANDS, fieldTtlCommandsOf, withoutFieldTtlCommand } from './field-ttl';
import { FUNCTION, hasFunctionsOf } from './functions';
import type { TypedLimits } from './typed';

/**
 * Commands of newer servers that a source may replicate and an older destination may lack:
 * asked for when connecting, then rewritten (hash field TTLs, see withoutFieldTtlCommand;
 * 6.2's and 7.0's, see destinationForm) or dropped and counted (FUNCTION, see functions.ts).
 */
const NEWER_COMMANDS: readonly string[] = [...FIELD_TTL_COMMANDS, FUNCTION, ...PROBED_COMMANDS];

/** Replies of a cluster whose slots move or are moving (resharding, failover): reload the slot map and try again. */
const REDIRECTS = new Set(['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN', 'READONLY', 'LOADING']);
/**
 * Tries of one command or group through redirections: about 60 s with the backoff of
 * followRedirect, for a group whose keys a migration has split between two nodes (TRYAGAIN
 * until they are together again; commands that ASK alone are sent on, see the writer's
 * followAsks) or a failover that takes the cluster's node timeout and an election.
 */
export const REDIRECT_TRIES = 310;
/** How long a lost destination is tried again before the sink stops (the source waits meanwhile). */
const RECONNECT_FOR_MS = 5 * 60_000;

export interface DestinationOptions {
  endpoint: EndpointConfig;
  /** Told each time the destination is tried again after it was lost (or not reached yet), with why. */
  onReconnect?: (cause: Error, attempt: number) => void;
}

/** What the destination counts into the writer's stats. */
export interface RedirectCounts {
  redirects: number;
  asks: number;
}

/**
 * A standalone or cluster destination behind one slot table: the connection of every master
 * (a standalone server is the master of every slot), the server's version and commands, the
 * redirections of a cluster whose slots move, and the one retry loop that makes a lost
 * destination again. It knows nothing of operations' order or checkpoints (the writer's).
 */
export class Destination {
  cluster = false;
  version: [number, number] = [0, 0];
  rdbVersion = 0;
  /** Which of NEWER_COMMANDS the destination has (see withoutFieldTtlCommand, functions.ts). */
  knownCommands: ReadonlySet<string> = new Set();
  /** How many dbs it has: 1 for a cluster. */
  databases = 1;
  masters: NodeConnection[] = [];
  /** Told when the masters change: a resharding, a failover, a connection made again. */
  onMasters: ((masters: NodeConnection[]) => void) | null = null;
  private slotMap: NodeConnection[] = [];
  private readonly conns = new Map<string, NodeConnection>();
  /** Current db of each standalone connection, to send SELECT only when it changes. */
  private readonly dbOf = new Map<NodeConnection, number>();
  private closed = false;

  constructor(
    private readonly opts: DestinationOptions,
    private readonly counts: RedirectCounts,
  ) {}

  /**
   * Connects and learns the destination's version, commands, dbs and (cluster) slot map. One
   * not reachable yet is tried again as a lost one is (see retrying); refused credentials or
   * a TLS mismatch are not, since trying again cannot cure them (SinkError.permanent).
   * `admit` runs on each try once connected (the writer's check of the masters).
   */
  connect(admit: () => Promise<void> = async () => undefined): Promise<void> {
    return this.retrying(null, async () => {
      await this.connectOnce();
      await admit();
    });
  }

  /**
   * After a lost connection: connects again (with the slot map of a cluster), retrying with
   * backoff for up to RECONNECT_FOR_MS.
   */
  reconnect(cause: unknown): Promise<void> {
    return this.retrying(cause, () => this.reopen());
  }

  /**
   * The one retry loop of the sink's connections. With a cause (a destination lost), each
   * try is told (onReconnect) and paused before; without one (the first connection), the
   * first try is made at once, and a permanent failure ends it.
   */
  private async retrying(cause: unknown, reach: () => Promise<void>): Promise<void> {
    const initial = cause === null;
    const since = Date.now();
    for (let attempt = 0; ; ) {
      if (cause !== null) {
        if (this.closed) throw cause;
        attempt++;
        this.opts.onReconnect?.(cause instanceof Error ? cause : new Error(String(cause)), attempt);
        await reconnectPause(attempt);
      }
      this.dropConnections(initial);
      try {
        await reach();
        return;
      } catch (err) {
        if (initial && (this.closed || (err instanceof SinkError && err.permanent))) throw err;
        if (Date.now() - since > RECONNECT_FOR_MS) {
          if (initial) throw err;
          throw new SinkError('CONNECT', `the destination could not be reached again for ${RECONNECT_FOR_MS / 1000} s: ${err instanceof Error ? err.message : String(err)}`);
        }
        cause = err;
      }
    }
  }

  /** Closes the broken connections (all of them before a first connection is tried again). */
  private dropConnections(all: boolean): void {
    for (const [name, c] of this.conns) {
      if (!all && c.broken === null) continue;
      c.close();
      this.conns.delete(name);
      this.dbOf.delete(c);
    }
  }

  private async connectOnce(): Promise<void> {
    const first = await this.openSeed();
    const info = String(await first.call(['INFO', 'server'])) + String(await first.call(['INFO', 'cluster']));
    const ver = /redis_version:(\d+)\.(\d+)/.exec(info);
    this.version = ver ? [Number(ver[1]), Number(ver[2])] : [0, 0];
    this.rdbVersion = rdbVersionOfServer(this.version);
    this.cluster = /cluster_enabled:1/.test(info);
    this.knownCommands = await this.newerCommandsOf(first);
    this.databases = this.cluster ? 1 : await databasesOf(first);
    if (this.cluster) await this.refreshSlots();
    else this.serveEverySlot(first);
  }

  private async reopen(): Promise<void> {
    if (!this.cluster) {
      this.serveEverySlot(await this.openSeed());
      return;
    }
    if (this.conns.size === 0) await this.openSeed();
    await this.refreshSlots();
  }

  private serveEverySlot(c: NodeConnection): void {
    this.masters = [c];
    this.slotMap = new Array(SLOT_COUNT).fill(c);
    this.onMasters?.(this.masters);
  }

  /**
   * Which of NEWER_COMMANDS the destination has, as it says (COMMAND INFO: no entry for a
   * command it lacks; 8.0's previews have 7.4's and call themselves 7.9), or by its version
   * when it refuses to say.
   */
  private async newerCommandsOf(c: NodeConnection): Promise<Set<string>> {
    const reply = await c.call(['COMMAND', 'INFO', ...NEWER_COMMANDS]);
    if (Array.isArray(reply)) return new Set(NEWER_COMMANDS.filter((_, i) => Array.isArray(reply[i])));
    const known = fieldTtlCommandsOf(this.version);
    if (hasFunctionsOf(this.version)) known.add(FUNCTION);
    for (const name of probedCommandsOf(this.version)) known.add(name);
    return known;
  }

  /**
   * What the destination runs for a command of the stream in a form it lacks (of a newer
   * server: see destinationForm and withoutFieldTtlCommand), its dropped field TTLs counted in
   * `limits` as the snapshot's are; null when it runs the command as it is.
   */
  rewritten(op: Pick<CommandOp, 'name' | 'args' | 'db' | 'offset'>, limits: TypedLimits): CommandArg[][] | null {
    const form = destinationForm(op, { version: this.version, rdbVersion: this.rdbVersion, commands: this.knownCommands }, limits);
    if (form !== null) return form;
    const r = withoutFieldTtlCommand(op.name, op.args, this.knownCommands);
    if (r === null) return null;
    limits.droppedFieldTtls += r.droppedTtls;
    return r.commands;
  }

  close(): void {
    this.closed = true;
    this.dropConnections(true);
  }

  /** Every open connection. */
  connections(): NodeConnection[] {
    return [...this.conns.values()];
  }

  /** Whether a connection to the destination broke (rather than the destination refusing a command). */
  lostConnection(): boolean {
    for (const c of this.conns.values()) if (c.broken !== null) return true;
    return false;
  }

  /** The master of `slot` (a standalone destination's one server whatever the slot). */
  nodeFor(slot: number): NodeConnection {
    return this.slotMap[this.cluster ? slot : 0];
  }

  /** Sends SELECT ahead of what follows on `c` when its db is not `db` (a cluster has db 0 only). */
  selectDb(c: NodeConnection, db: number, tag: unknown): void {
    if (this.cluster || this.dbOf.get(c) === db) return;
    c.send(['SELECT', db], null, tag);
    this.dbOf.set(c, db);
  }

  /** The first seed of the endpoint that accepts a connection. */
  private async openSeed(): Promise<NodeConnection> {
    const ep = this.opts.endpoint;
    const seeds = ep.mode === 'cluster' ? ep.seeds : [{ host: ep.host, port: ep.port }];
    let last: unknown;
    for (const s of seeds) {
      try {
        return await this.open(s.host, s.port);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  private async open(host: string, port: number): Promise<NodeConnection> {
    const name = `${host}:${port}`;
    const existing = this.conns.get(name);
    if (existing && !existing.broken) return existing;
    const so = toSocketOptions(this.opts.endpoint, host, port);
    const opts: ConnectionOptions = { host, port, tls: so.tls ? so.connect : null, username: so.auth?.username, password: so.auth?.password, connectTimeoutMs: so.connectTimeoutMs };
    const conn = new NodeConnection(opts);
    await conn.connect();
    this.conns.set(name, conn);
    this.dbOf.set(conn, 0);
    return conn;
  }

  /** After a batch was redirected: counts it and reloads the slot map. */
  async reloadAfterRedirect(): Promise<void> {
    this.counts.redirects++;
    await this.refreshSlots();
  }

  /** Learns which master serves which slot, from the first live connection that can say. */
  private async refreshSlots(): Promise<void> {
    let shards: ShardInfo[] | null = null;
    let lastErr: unknown;
    for (const c of [...this.conns.values()].filter((x) => !x.broken)) {
      try {
        const reply = await c.call(['CLUSTER', 'SLOTS']);
        if (reply instanceof RespError) throw reply;
        // a node of a server before 4.0 has no id in the reply: only where it is matters here
        shards = parseClusterSlots(reply, this.seedHost(), { addressAsId: true });
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (shards === null) throw new SinkError('CONNECT', `the destination cluster's slot map cannot be read: ${String(lastErr)}`);
    const map: NodeConnection[] = new Array(SLOT_COUNT);
    const masters: NodeConnection[] = [];
    for (const shard of shards) {
      const conn = await this.open(shard.master.host, shard.master.port);
      if (!masters.includes(conn)) masters.push(conn);
      for (const [from, to] of shard.slots) for (let s = from; s <= to; s++) map[s] = conn;
    }
    let missing = -1;
    for (let s = 0; s < SLOT_COUNT && missing < 0; s++) if (map[s] === undefined) missing = s;
    if (missing >= 0 || masters.length === 0) {
      throw new SinkError('CLUSTERDOWN', `the destination cluster does not serve every slot (slot ${missing} has no master)`);
    }
    this.slotMap = map;
    this.masters = masters;
    this.onMasters?.(this.masters);
  }

  private seedHost(): string {
    const ep = this.opts.endpoint;
    return ep.mode === 'cluster' ? ep.seeds[0].host : ep.host;
  }

  /** One command on the master of `slot`, following redirections (see REDIRECTS). */
  async callAt(slot: number, args: readonly CommandArg[]): Promise<RespValue> {
    for (let attempt = 1; ; attempt++) {
      let reply = await this.nodeFor(slot).call(args);
      if (this.cluster && reply instanceof RespError && reply.code === 'ASK') {
        // the slot is migrating and the key is not (or no longer) here: the importing node takes it behind ASKING
        this.counts.asks++;
        const to = await this.askedNode(reply);
        to.send(['ASKING']);
        reply = await to.call(args);
      }
      if (!this.redirected(reply, attempt)) return reply;
      await this.followRedirect(attempt);
    }
  }

  /** Whether a reply is a redirection to follow (another try is left). */
  redirected(reply: RespValue | undefined, attempt: number): boolean {
    return this.cluster && reply instanceof RespError && REDIRECTS.has(reply.code) && attempt < REDIRECT_TRIES;
  }

  /** Waits a little longer at each try (10 ms more, up to 200 ms), then reloads the slot map. */
  async followRedirect(attempt: number): Promise<void> {
    this.counts.redirects++;
    await new Promise((r) => setTimeout(r, Math.min(10 * attempt, 200)));
    await this.refreshSlots();
  }

  /** A connection to the node an ASK names (an unknown host is the seeds' host). */
  askedNode(ask: RespError): Promise<NodeConnection> {
    const { host, port } = askTarget(ask);
    return this.open(host === '' || host === '?' ? this.seedHost() : host, port);
  }

  /** Waits for every reply; returns the redirected commands (to be sent again). */
  async collect(conns: NodeConnection[]): Promise<ReplyFailure[]> {
    const results = await Promise.allSettled(conns.map((c) => c.replied()));
    const broken = results.find((r) => r.status === 'rejected');
    if (broken) throw connectionError(broken.reason);
    return triage(conns.flatMap((c) => c.takeFailures()));
  }
}

/** The redirected commands (to be sent again); throws for any other refusal. */
export function triage(failures: ReplyFailure[]): ReplyFailure[] {
  const redirects: ReplyFailure[] = [];
  for (const f of failures) {
    if (REDIRECTS.has(f.error.code)) redirects.push(f);
    else if (f.error.code !== 'EXECABORT') throw SinkError.fromReply(f.error, f.tag, f.node); // EXECABORT: reported through the queued command's own error
  }
  return redirects;
}

/** The slot of `ASK <slot> <host>:<port>` and where it goes (an IPv6 host holds colons of its own). */
export function askTarget(ask: RespError): { slot: number; host: string; port: number } {
  const [, slot, address = ''] = ask.message.split(' ');
  const colon = address.lastIndexOf(':');
  return { slot: Number(slot), host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/**
 * How many dbs a server has: its `databases`, or where CONFIG is refused (managed services
 * rename it) the number SELECT takes, found by halving; 1 where SELECT is refused too, as
 * then only the db a connection starts in can be written.
 */
async function databasesOf(c: NodeConnection): Promise<number> {
  const config = await c.call(['CONFIG', 'GET', 'databases']);
  if (Array.isArray(config) && config.length === 2) return Number(String(config[1]));
  if ((await c.call(['SELECT', 0])) instanceof RespError) return 1;
  // `databases` is at most INT_MAX (config.c); lo is a db SELECT takes, none above hi is
  let [lo, hi] = [0, 2 ** 31 - 2];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await c.call(['SELECT', mid])) instanceof RespError) hi = mid - 1;
    else lo = mid;
  }
  await c.call(['SELECT', 0]);
  return lo + 1;
}

export function connectionError(reason: unknown): SinkError {
  return new SinkError('CONNECT', reason instanceof Error ? reason.message : String(reason));
}

/** Between two tries to reach the destination: 100 ms, doubling up to 2 s. */
function reconnectPause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(100 * 2 ** (attempt - 1), 2000)));
}
