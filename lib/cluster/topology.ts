/**
 * Discovery of a source's replication units ("shards"): one per master that owns slots in a
 * cluster, or the single server of a standalone source. The replica source runs one replica
 * link per shard, and re-discovers to follow failovers and resharding.
 */
import { EventEmitter } from 'node:events';
import { parseInfo } from '../server/info';
import { formatSlotRanges, normalizeSlotRanges, parseSlotRange, SLOT_COUNT, type SlotRange } from './slots';

export interface NodeAddr {
  /** Cluster node id; `host:port` for standalone servers, which have none. */
  id: string;
  host: string;
  port: number;
  /** As CLUSTER SHARDS says it ('online', 'loading', 'failed'), or a standalone replica's state; absent when unknown. */
  health?: string;
}

export interface ShardInfo {
  /**
   * The CLUSTER SHARDS shard id where the server has one (7.2+), else the master's node id,
   * which changes on failover; `host:port` of the seed for a standalone source.
   */
  id: string;
  /** Sorted, adjacent ranges merged; a standalone source owns every slot. */
  slots: SlotRange[];
  master: NodeAddr;
  /** Sorted by id, so that the choice of pickNode is stable across discoveries. */
  replicas: NodeAddr[];
}

export interface Topology {
  mode: 'standalone' | 'cluster';
  /** Sorted by first slot. */
  shards: ShardInfo[];
  /** The seed whose view this is. */
  answeredBy: { host: string; port: number };
}

/** The little of a client that discovery needs; an ioredis `Redis` is one. */
export interface RedisLike {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  disconnect(): void;
}

/** Opens a connection with whatever auth and TLS the caller's endpoint needs; discovery disconnects it once answered. */
export type Connect = (host: string, port: number) => Promise<RedisLike>;

export interface DiscoverOptions {
  /** How long one seed may take to connect and answer before the next is tried. Default 5000. */
  timeoutMs?: number;
  /** Report nodes' TLS ports from CLUSTER SHARDS (CLUSTER SLOTS and NODES already answer per connection type). */
  tls?: boolean;
  signal?: AbortSignal;
}

/**
 * Asks the seeds in order until one answers. A standalone server becomes one shard with
 * its replicas from INFO replication; a cluster is read with CLUSTER SHARDS (7.0+), else
 * CLUSTER SLOTS (4.0+, the first with node ids), else CLUSTER NODES. The topology is the
 * answering node's view; a node cut off from the others may report a stale one.
 */
export async function discoverTopology(
  connect: Connect,
  seeds: ReadonlyArray<{ host: string; port: number }>,
  opts: DiscoverOptions = {},
): Promise<Topology> {
  if (seeds.length === 0) throw new Error('no seed to discover the topology from');
  const failures: string[] = [];
  let lastError: unknown;
  for (const seed of seeds) {
    opts.signal?.throwIfAborted();
    try {
      return await askSeed(connect, seed, opts);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      // connection errors already start with the address; a second copy only makes the line longer
      const address = `${seed.host}:${seed.port}`;
      const message = (err as Error).message;
      lastError = err;
      failures.push(message.startsWith(`${address}:`) ? message : `${address}: ${message}`);
    }
  }
  // the cause keeps the last error's code (AUTH, NOPERM…) for callers that tell them apart
  throw new Error(failures.length === 1 ? failures[0] : `none of the ${failures.length} nodes answered (${failures.join('; ')})`, { cause: lastError });
}

async function askSeed(connect: Connect, seed: { host: string; port: number }, opts: DiscoverOptions): Promise<Topology> {
  let client: RedisLike | undefined;
  let done = false;
  const work = (async () => {
    const c = await connect(seed.host, seed.port);
    if (done) {
      // Given up on while connecting: nobody else would close this one.
      c.disconnect();
      throw new Error('connected too late');
    }
    client = c;
    return readTopology(c, seed, opts.tls ?? false);
  })();
  try {
    return await bounded(work, opts.timeoutMs ?? 5000, opts.signal);
  } finally {
    done = true;
    client?.disconnect();
  }
}

/** work, or a rejection once ms have passed or signal aborts, whichever comes first. */
function bounded<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => settle(() => reject(signal?.reason));
    // Unref'd: a pending connection or command keeps the process alive if anything needs to.
    const timer = setTimeout(() => settle(() => reject(new Error(`no answer within ${ms} ms`))), ms).unref();
    const settle = (fn: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => settle(() => resolve(v)),
      (err: unknown) => settle(() => reject(err)),
    );
  });
}

async function readTopology(client: RedisLike, seed: { host: string; port: number }, tls: boolean): Promise<Topology> {
  const answeredBy = { host: seed.host, port: seed.port };
  const info = parseInfo(text(await client.call('INFO', 'cluster')));
  // Servers before 3.0 have no cluster section at all.
  if (info.cluster_enabled !== '1') {
    const replication = parseInfo(text(await client.call('INFO', 'replication')));
    const id = `${seed.host}:${seed.port}`;
    const shard: ShardInfo = {
      id,
      slots: [[0, SLOT_COUNT - 1]],
      // A seed that is itself a replica is still the source asked for: its data set is the shard's.
      master: { id, host: seed.host, port: seed.port },
      replicas: sortById(standaloneReplicas(replication, seed.host)),
    };
    return { mode: 'standalone', shards: [shard], answeredBy };
  }
  const readers: Array<[string, () => Promise<ShardInfo[]>]> = [
    ['CLUSTER SHARDS', async () => parseClusterShards(await client.call('CLUSTER', 'SHARDS'), seed.host, tls)],
    ['CLUSTER SLOTS', async () => parseClusterSlots(await client.call('CLUSTER', 'SLOTS'), seed.host)],
    ['CLUSTER NODES', async () => parseClusterNodes(text(await client.call('CLUSTER', 'NODES')), seed.host)],
  ];
  const failures: string[] = [];
  for (const [name, read] of readers) {
    try {
      return { mode: 'cluster', shards: await read(), answeredBy };
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot read the cluster topology (${failures.join('; ')})`);
}

/** `slaveN:ip=…,port=…,state=online,…` lines of a master's INFO replication. */
function standaloneReplicas(info: Record<string, string>, seedHost: string): NodeAddr[] {
  return Object.entries(info)
    .filter(([key]) => /^slave\d+$/.test(key))
    .map(([key, value]) => {
      const fields = Object.fromEntries(value.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const host = reportedHost(fields.ip, seedHost);
      const port = toInt(fields.port, `${key} port`);
      return { id: `${host}:${port}`, host, port, health: fields.state };
    });
}

/**
 * CLUSTER SHARDS (7.0+). Shards whose master owns no slots are left out. `tls` picks the
 * nodes' `tls-port` where they have one. Maps may come as flat arrays (RESP2, ioredis's
 * legacy mapping), Maps or plain objects.
 */
export function parseClusterShards(reply: unknown, seedHost: string, tls = false): ShardInfo[] {
  const shards: ShardInfo[] = [];
  for (const entry of toArray(reply, 'CLUSTER SHARDS reply')) {
    const fields = toRecord(entry, 'shard');
    const flat = toArray(fields.get('slots') ?? [], 'shard slots').map((s) => toInt(s, 'slot'));
    if (flat.length % 2 !== 0) throw new Error(`odd number of slot bounds: ${flat.join(',')}`);
    const slots = normalizeSlotRanges(Array.from({ length: flat.length / 2 }, (_, i): SlotRange => [flat[2 * i], flat[2 * i + 1]]));
    if (slots.length === 0) continue;
    const nodes = toArray(fields.get('nodes'), 'shard nodes').map((n) => shardNode(toRecord(n, 'shard node'), seedHost, tls));
    const masters = nodes.filter((n) => n.role === 'master');
    // A failed former master may still be listed, flagged master, beside the one that replaced it.
    const master = masters.find((n) => n.addr.health !== 'failed') ?? masters[0];
    if (master === undefined) throw new Error(`the shard owning ${formatSlotRanges(slots)} lists no master`);
    const shardId = fields.get('id');
    shards.push({
      id: shardId === undefined || shardId === null ? master.addr.id : text(shardId),
      slots,
      master: master.addr,
      replicas: sortById(nodes.filter((n) => n.role !== 'master').map((n) => n.addr)),
    });
  }
  return sortShards(shards);
}

function shardNode(fields: Map<string, unknown>, seedHost: string, tls: boolean): { role: string; addr: NodeAddr } {
  const id = text(fields.get('id'));
  const plain = fields.get('port');
  const secure = fields.get('tls-port');
  const port = tls ? (secure ?? plain) : (plain ?? secure);
  const addr: NodeAddr = {
    id,
    host: reportedHost(fields.get('endpoint') ?? fields.get('ip'), seedHost),
    port: toInt(port, `port of node ${id}`),
  };
  const health = fields.get('health');
  if (health !== undefined && health !== null) addr.health = text(health);
  return { role: text(fields.get('role')), addr };
}

/**
 * CLUSTER SLOTS (3.0+; node ids from 4.0). It lists only replicas the answering node deems
 * available (7.0: not failed and with a nonzero replication offset), and no health. Before
 * 4.0 a node has no id: refused (discovery then reads CLUSTER NODES, which has them) unless
 * `addressAsId`, which names such a node `host:port`, as a writer that only routes needs.
 */
export function parseClusterSlots(reply: unknown, seedHost: string, opts: { addressAsId?: boolean } = {}): ShardInfo[] {
  const byMaster = new Map<string, ShardInfo>();
  for (const entry of toArray(reply, 'CLUSTER SLOTS reply')) {
    const fields = toArray(entry, 'slot range');
    if (fields.length < 3) throw new Error('a slot range with no master');
    const [master, ...replicas] = fields.slice(2).map((n) => slotsNode(n, seedHost, opts.addressAsId ?? false));
    let shard = byMaster.get(master.id);
    if (shard === undefined) {
      shard = { id: master.id, slots: [], master, replicas: [] };
      byMaster.set(master.id, shard);
    }
    shard.slots.push([toInt(fields[0], 'slot'), toInt(fields[1], 'slot')]);
    for (const replica of replicas) {
      if (!shard.replicas.some((r) => r.id === replica.id)) shard.replicas.push(replica);
    }
  }
  return sortShards(
    [...byMaster.values()].map((s) => ({ ...s, slots: normalizeSlotRanges(s.slots), replicas: sortById(s.replicas) })),
  );
}

function slotsNode(node: unknown, seedHost: string, addressAsId: boolean): NodeAddr {
  const [reported, reportedPort, id] = toArray(node, 'slot range node');
  const idless = id === undefined || id === null;
  if (idless && !addressAsId) throw new Error('no node ids in CLUSTER SLOTS (Redis before 4.0)');
  const host = reportedHost(reported, seedHost);
  const port = toInt(reportedPort, 'node port');
  return { id: idless ? `${host}:${port}` : text(id), host, port };
}

/**
 * CLUSTER NODES text (3.0+): `<id> <ip:port[@cport][,hostname]> <flags> <master> <ping> <pong>
 * <epoch> <link> <slot>...`. Nodes in handshake are left out (their ids are provisional), as
 * are importing/migrating markers (`[slot->-id]`, `[slot-<-id]`): the slot still belongs to
 * the node that lists it plainly. `fail` and `noaddr` nodes get health 'failed'.
 */
export function parseClusterNodes(nodesText: string, seedHost: string): ShardInfo[] {
  const nodes = nodesText
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split(' ');
      if (fields.length < 8) throw new Error(`bad CLUSTER NODES line: ${line}`);
      const [id, address, flagList, masterId] = fields;
      const flags = flagList.split(',');
      // ip:port@cport,hostname; an IPv6 ip has colons of its own.
      const hostPort = address.split(',')[0].split('@')[0];
      const colon = hostPort.lastIndexOf(':');
      if (colon < 0) throw new Error(`bad address in CLUSTER NODES line: ${line}`);
      const addr: NodeAddr = {
        id,
        host: reportedHost(hostPort.slice(0, colon), seedHost),
        port: toInt(hostPort.slice(colon + 1), `port of node ${id}`),
      };
      if (flags.includes('fail') || flags.includes('noaddr')) addr.health = 'failed';
      const slots = fields
        .slice(8)
        .filter((token) => !token.startsWith('['))
        .map(parseSlotRange);
      return { addr, flags, masterId, slots };
    })
    .filter((n) => !n.flags.includes('handshake'));
  const shards = new Map<string, ShardInfo>();
  for (const n of nodes) {
    if (n.flags.includes('master') && n.slots.length > 0) {
      shards.set(n.addr.id, { id: n.addr.id, slots: normalizeSlotRanges(n.slots), master: n.addr, replicas: [] });
    }
  }
  for (const n of nodes) {
    if (n.flags.includes('slave')) shards.get(n.masterId)?.replicas.push(n.addr);
  }
  return sortShards([...shards.values()].map((s) => ({ ...s, replicas: sortById(s.replicas) })));
}

/**
 * The node a replica link should read from: with 'replica', the first healthy replica (by
 * id, so the choice is stable), else the master.
 */
export function pickNode(shard: ShardInfo, prefer: 'master' | 'replica'): NodeAddr {
  return (prefer === 'replica' ? shard.replicas.find(isHealthy) : undefined) ?? shard.master;
}

/** 'online', or unknown (CLUSTER SLOTS lists only replicas it deems available). */
function isHealthy(node: NodeAddr): boolean {
  return node.health === undefined || node.health === 'online';
}

/**
 * A subset of the shards, so that several Node-RED instances can share a big source. The
 * selector is a comma-separated list of terms; the result is their union, in slot order:
 *
 * - `all` (or `*`): every shard;
 * - `N`: the N-th shard in slot order, from 1;
 * - `A-B`: the shards whose FIRST slot lies in A..B (0 ≤ A ≤ B ≤ 16383). Not "owning any slot
 *   in A..B": that way, instances given disjoint ranges that together cover 0-16383 (such as
 *   `0-8191` and `8192-16383`) take every shard exactly once, whatever the slot layout, and
 *   never both replicate a shard whose slots straddle their boundary. A range may select
 *   nothing, as a partition of a small cluster does;
 * - anything else: a shard id, or the node id or `host:port` of any node of a shard.
 *
 * Indexes and ranges are re-evaluated on each discovery, so resharding can move a shard from
 * one instance to another; ids of 7.0 and older follow the master, so they change on failover.
 * Throws an Error naming the first bad term: an empty one, a malformed or out-of-bounds range,
 * an index beyond the shard count, an id no shard has.
 */
export function selectShards(shards: readonly ShardInfo[], selector: string): ShardInfo[] {
  const chosen = new Set<ShardInfo>();
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    const bad = (why: string): Error => new Error(`bad shard selector term "${term}" in "${selector}": ${why}`);
    if (term === '') throw bad('empty term');
    if (term.toLowerCase() === 'all' || term === '*') {
      shards.forEach((s) => chosen.add(s));
    } else if (/^\d+$/.test(term)) {
      const index = Number(term);
      if (index < 1 || index > shards.length) throw bad(`there are ${shards.length} shards, counted from 1`);
      chosen.add(shards[index - 1]);
    } else if (/^\d+\s*-\s*\d+$/.test(term)) {
      const [start, end] = term.split('-').map(Number);
      if (end >= SLOT_COUNT || start > end) throw bad(`not a slot range within 0-${SLOT_COUNT - 1}`);
      shards.filter((s) => s.slots[0][0] >= start && s.slots[0][0] <= end).forEach((s) => chosen.add(s));
    } else {
      const matches = shards.filter(
        (s) => s.id === term || [s.master, ...s.replicas].some((n) => n.id === term || `${n.host}:${n.port}` === term),
      );
      if (matches.length === 0) throw bad('no shard has this shard id, node id or address');
      matches.forEach((s) => chosen.add(s));
    }
  }
  return shards.filter((s) => chosen.has(s));
}

export interface ShardChange {
  before: ShardInfo;
  after: ShardInfo;
}

export interface TopologyDiff {
  /** New shards, e.g. a master given slots; on the first discovery, every shard. */
  added: ShardInfo[];
  /** Shards gone, e.g. a master whose last slot moved away. */
  removed: ShardInfo[];
  /** Another node is the master (failover), or the master moved to another address. */
  masterChanged: ShardChange[];
  /** Slots moved in or out (resharding). */
  slotsChanged: ShardChange[];
  /** Same master node, but its health changed or replicas came, went, moved or changed health. */
  replicasChanged: ShardChange[];
}

/**
 * What changed from one discovery to the next. Shards are matched by id first; as ids of
 * 7.0 and older change on failover, an unmatched shard then matches one whose new master was
 * among its nodes, or one with the very same slots.
 */
export function diffShards(before: readonly ShardInfo[], after: readonly ShardInfo[]): TopologyDiff {
  const diff: TopologyDiff = { added: [], removed: [], masterChanged: [], slotsChanged: [], replicasChanged: [] };
  const unmatched = new Set(before);
  const pairs: ShardChange[] = [];
  const unpaired: ShardInfo[] = [];
  for (const shard of after) {
    const same = [...unmatched].find((b) => b.id === shard.id);
    if (same === undefined) {
      unpaired.push(shard);
    } else {
      unmatched.delete(same);
      pairs.push({ before: same, after: shard });
    }
  }
  for (const shard of unpaired) {
    const same = [...unmatched].find(
      (b) => [b.master, ...b.replicas].some((n) => n.id === shard.master.id) || sameJson(b.slots, shard.slots),
    );
    if (same === undefined) {
      diff.added.push(shard);
    } else {
      unmatched.delete(same);
      pairs.push({ before: same, after: shard });
    }
  }
  diff.removed.push(...unmatched);
  for (const pair of pairs) {
    const { before: b, after: a } = pair;
    if (b.master.id !== a.master.id || b.master.host !== a.master.host || b.master.port !== a.master.port) {
      diff.masterChanged.push(pair);
    } else if (b.master.health !== a.master.health || !sameJson(b.replicas, a.replicas)) {
      diff.replicasChanged.push(pair);
    }
    if (!sameJson(b.slots, a.slots)) diff.slotsChanged.push(pair);
  }
  return diff;
}

function isEmptyDiff(diff: TopologyDiff): boolean {
  return Object.values(diff).every((list: unknown[]) => list.length === 0);
}

export interface TopologyWatcherOptions extends Omit<DiscoverOptions, 'signal'> {
  /** Time between the end of one discovery and the start of the next. Default 5000. */
  intervalMs?: number;
}

interface TopologyWatcherEvents {
  /** The new topology and what changed; the first successful discovery reports every shard as added. */
  change: [topology: Topology, diff: TopologyDiff];
  /** A periodic discovery failed (the next one will try again); only emitted when someone listens. */
  error: [err: Error];
}

/**
 * Re-discovers the topology every intervalMs and emits `change` when it differs. Its timer
 * does not keep the process alive; stop() ends it, including a discovery under way.
 */
export class TopologyWatcher extends EventEmitter<TopologyWatcherEvents> {
  /** The last topology discovered. */
  topology: Topology | undefined;
  private readonly intervalMs: number;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<Topology> | undefined;
  private queued: Promise<Topology> | undefined;
  private started = false;

  constructor(
    private readonly connect: Connect,
    private readonly seeds: ReadonlyArray<{ host: string; port: number }>,
    private readonly opts: TopologyWatcherOptions = {},
  ) {
    super();
    this.intervalMs = opts.intervalMs ?? 5000;
  }

  /** Starts the periodic discoveries; resolves with the first (a failure does not stop the later ones). */
  start(): Promise<Topology> {
    this.started = true;
    return this.refresh();
  }

  /**
   * Discovers now, e.g. when a link broke. A discovery under way may predate the cause, so a
   * call during one gets the next; calls during that share it.
   */
  refresh(): Promise<Topology> {
    if (this.abort.signal.aborted) return Promise.reject(new Error('topology watcher stopped'));
    if (this.running === undefined) return this.round();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.round();
      });
    return this.queued;
  }

  /** Resolves once no discovery runs any more; no event follows. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('topology watcher stopped'));
    clearTimeout(this.timer);
    await Promise.allSettled([this.running, this.queued]);
  }

  private round(): Promise<Topology> {
    clearTimeout(this.timer);
    const round = this.discover().finally(() => {
      if (this.running === round) this.running = undefined;
      this.schedule();
    });
    this.running = round;
    return round;
  }

  private async discover(): Promise<Topology> {
    const signal = this.abort.signal;
    signal.throwIfAborted();
    const topology = await discoverTopology(this.connect, this.candidates(), { ...this.opts, signal });
    signal.throwIfAborted();
    const diff = diffShards(this.topology?.shards ?? [], topology.shards);
    this.topology = topology;
    if (!isEmptyDiff(diff)) this.emit('change', topology, diff);
    return topology;
  }

  /**
   * The node that answered last (its view is the one the previous diff is against), then the
   * configured seeds, then every node known: the seeds may have left the cluster since.
   */
  private candidates(): Array<{ host: string; port: number }> {
    const known = this.topology?.shards.flatMap((s) => [s.master, ...s.replicas]) ?? [];
    const all = [...(this.topology === undefined ? [] : [this.topology.answeredBy]), ...this.seeds, ...known];
    // A Map keeps each key where it was first inserted.
    const unique = new Map(all.map(({ host, port }): [string, { host: string; port: number }] => [`${host}:${port}`, { host, port }]));
    return [...unique.values()];
  }

  private schedule(): void {
    if (!this.started || this.abort.signal.aborted || this.queued !== undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refresh().catch((err: Error) => {
        // Silently retried otherwise: an 'error' event nobody listens to would throw.
        if (!this.abort.signal.aborted && this.listenerCount('error') > 0) this.emit('error', err);
      });
    }, this.intervalMs).unref();
  }
}

function sortShards(shards: ShardInfo[]): ShardInfo[] {
  return shards.sort((a, b) => a.slots[0][0] - b.slots[0][0]);
}

function sortById(nodes: NodeAddr[]): NodeAddr[] {
  return nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A node reports '?' or nothing when it does not know its own address: the one we reached it by is right. */
function reportedHost(host: unknown, seedHost: string): string {
  const h = host === undefined || host === null ? '' : text(host);
  return h === '' || h === '?' ? seedHost : h;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString();
  if (typeof v === 'number') return String(v);
  throw new Error(`expected a string, got ${JSON.stringify(v)}`);
}

/** Slots and ports: non-negative integers, as numbers or (stringNumbers, text replies) digits. */
function toInt(v: unknown, what: string): number {
  const s = v === undefined || v === null ? '' : text(v);
  if (!/^\d+$/.test(s)) throw new Error(`bad ${what}: ${JSON.stringify(v)}`);
  return Number(s);
}

function toArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what} is not an array`);
  return v;
}

/** RESP3 maps, whichever way the client hands them over. */
function toRecord(v: unknown, what: string): Map<string, unknown> {
  if (v instanceof Map) return new Map([...v].map(([k, x]: [unknown, unknown]) => [text(k), x]));
  if (Array.isArray(v)) {
    if (v.length % 2 !== 0) throw new Error(`${what} has an odd number of map elements`);
    return new Map(Array.from({ length: v.length / 2 }, (_, i): [string, unknown] => [text(v[2 * i]), v[2 * i + 1]]));
  }
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) return new Map(Object.entries(v));
  throw new Error(`${what} is not a map`);
}
