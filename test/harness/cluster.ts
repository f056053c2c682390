/**
 * Real Redis Clusters for tests, built from startRedis() nodes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type ClusterOptions } from 'ioredis';
import { HOST, startRedis, track, type RedisConfig, type RedisServer, type StartRedisOptions } from './redis';

const SLOT_COUNT = 16384;

/** Inclusive slot ranges, as in CLUSTER ADDSLOTSRANGE. */
export type SlotRanges = Array<[start: number, end: number]>;

/** config and args apply to every node. */
export interface StartClusterOptions extends StartRedisOptions {
  /** Default 3, or slots.length when slots is given. */
  masters?: number;
  /** Replicas per master. Default 1. */
  replicas?: number;
  /** Default 2000: failure detection and failover in a test should take seconds, not the 15 s default. */
  nodeTimeoutMs?: number;
  /**
   * Slot ranges per master; slots in no range stay unassigned. Given, the cluster is built by
   * hand (ADDSLOTS, MEET, REPLICATE) instead of `redis-cli --cluster create`.
   */
  slots?: SlotRanges[];
  /** How long the cluster may take to converge after creation. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface FailoverOptions {
  /** FORCE / TAKEOVER as in CLUSTER FAILOVER; default is the coordinated manual failover. */
  mode?: 'FORCE' | 'TAKEOVER';
  timeoutMs?: number;
}

/** A slot on its way from one master to another (see RedisCluster.startSlotMigration). */
export interface SlotMigration {
  /** The master the slot leaves. */
  from: RedisServer;
  /** Moves these keys of the slot now (MIGRATE). */
  migrate(keys: string[]): Promise<void>;
  /** Moves the remaining keys, gives the slot to the target on every master, and waits until all nodes agree. */
  finish(): Promise<void>;
}

type Role = { role: 'master' } | { role: 'slave'; masterPort: number; linkState: string };

export class RedisCluster {
  readonly seeds: Array<{ host: string; port: number }>;
  private readonly clients = new Set<Cluster>();
  private readonly untrack: () => void;
  private stopping: Promise<void> | undefined;

  constructor(
    /** In start order: the intended masters first, then their replicas. */
    readonly nodes: RedisServer[],
    private readonly masterCount: number,
    /** cluster_state every node should report once converged: 'fail' when slots are uncovered and required. */
    private readonly expectedState: 'ok' | 'fail',
    private readonly assignedSlots: number,
  ) {
    this.seeds = nodes.map(({ host, port }) => ({ host, port }));
    this.untrack = track(this);
  }

  /** A new ioredis Cluster client; stop() disconnects it. */
  client(opts: ClusterOptions = {}): Cluster {
    const client = new Cluster(this.seeds, {
      ...opts,
      redisOptions: { password: this.nodes[0].password, ...opts.redisOptions },
    });
    this.clients.add(client);
    client.once('end', () => this.clients.delete(client));
    return client;
  }

  /** The nodes that are masters now (roles change on failover). */
  async masters(): Promise<RedisServer[]> {
    const roles = await this.roles();
    return this.nodes.filter((_, i) => roles[i].role === 'master');
  }

  async replicas(): Promise<RedisServer[]> {
    const roles = await this.roles();
    return this.nodes.filter((_, i) => roles[i].role === 'slave');
  }

  async replicasOf(master: RedisServer): Promise<RedisServer[]> {
    const roles = await this.roles();
    return this.nodes.filter((_, i) => {
      const r = roles[i];
      return r.role === 'slave' && r.masterPort === master.port;
    });
  }

  /** The master serving a slot according to `seenBy`'s CLUSTER SLOTS, or undefined when the slot is unassigned. */
  async masterForSlot(slot: number, seenBy = this.nodes[0]): Promise<RedisServer | undefined> {
    const ranges = (await seenBy.command('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    const range = ranges.find(([start, end]) => slot >= start && slot <= end);
    return range === undefined ? undefined : this.nodes.find((n) => n.port === Number(range[2][1]));
  }

  /** CLUSTER FAILOVER on a replica, resolved once it is a master and every node agrees. */
  async failover(replica: RedisServer, opts: FailoverOptions = {}): Promise<void> {
    const [role] = await this.roles([replica]);
    if (role.role !== 'slave') throw new Error(`node ${replica.port} is not a replica`);
    await replica.command('CLUSTER', 'FAILOVER', ...(opts.mode === undefined ? [] : [opts.mode]));
    await this.waitConverged(opts.timeoutMs ?? 15_000, async () => {
      const [now] = await this.roles([replica]);
      return now.role === 'master' ? undefined : `${replica.port} is still a replica`;
    });
  }

  /** Moves a slot and its keys to another master, as redis-cli --cluster reshard does. */
  async moveSlot(slot: number, to: RedisServer): Promise<void> {
    const migration = await this.startSlotMigration(slot, to);
    await migration.finish();
  }

  /**
   * Opens the migration of a slot to another master (IMPORTING on the target, MIGRATING on its
   * owner), which moves keys on request and ends with finish(). Until then the owner answers
   * ASK for every key it no longer has.
   */
  async startSlotMigration(slot: number, to: RedisServer): Promise<SlotMigration> {
    const from = await this.masterForSlot(slot);
    if (from === undefined) throw new Error(`slot ${slot} is not assigned`);
    if (from.port === to.port) throw new Error(`slot ${slot} is on ${to.port} already`);
    const [fromId, toId] = await Promise.all([from, to].map(async (n) => String(await n.command('CLUSTER', 'MYID'))));
    await to.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
    await from.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    const auth = from.password === undefined ? [] : ['AUTH', from.password];
    const migrate = async (keys: string[]): Promise<void> => {
      if (keys.length > 0) await from.command('MIGRATE', to.host, to.port, '', 0, 5000, ...auth, 'KEYS', ...keys);
    };
    return {
      from,
      migrate,
      // The target takes the slot first: its SETSLOT NODE then bumps its config epoch (it was
      // importing), so gossip from the old owner, with an older epoch, cannot hand it back.
      finish: async () => {
        for (;;) {
          const keys = (await from.command('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
          if (keys.length === 0) break;
          await migrate(keys);
        }
        await to.command('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
        await from.command('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
        const others = (await this.masters()).filter((m) => m.port !== from.port && m.port !== to.port);
        await Promise.all(others.map((m) => m.command('CLUSTER', 'SETSLOT', slot, 'NODE', toId)));
        await this.waitConverged(15_000, async () => {
          for (const node of this.nodes) {
            const owner = await this.masterForSlot(slot, node);
            if (owner?.port !== to.port) return `${node.port} still sees slot ${slot} at ${owner?.port ?? 'no master'}`;
          }
          return undefined;
        });
      },
    };
  }

  /**
   * Waits until every node reports the expected cluster_state, knows every other node with
   * no failure flags, counts the same assigned slots and the same masters, and every replica's
   * link to its master is up.
   */
  async waitConverged(timeoutMs: number, extraCheck?: () => Promise<string | undefined>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let problem: string | undefined;
    for (;;) {
      try {
        problem = (await this.convergenceProblem()) ?? (await extraCheck?.());
      } catch (err) {
        problem = (err as Error).message;
      }
      if (problem === undefined) return;
      if (Date.now() > deadline) throw new Error(`cluster did not converge within ${timeoutMs} ms: ${problem}`);
      await sleep(100);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
    await Promise.all(this.nodes.map((n) => n.stop()));
    this.untrack();
  }

  private async roles(nodes = this.nodes): Promise<Role[]> {
    return Promise.all(
      nodes.map(async (node): Promise<Role> => {
        const reply = (await node.command('ROLE')) as unknown[];
        // ROLE's link state is 'connected' exactly when INFO says master_link_status:up.
        return reply[0] === 'master'
          ? { role: 'master' }
          : { role: 'slave', masterPort: Number(reply[2]), linkState: String(reply[3]) };
      }),
    );
  }

  private async convergenceProblem(): Promise<string | undefined> {
    const roles = await this.roles();
    const masterPorts = new Set(this.nodes.filter((_, i) => roles[i].role === 'master').map((n) => n.port));
    if (masterPorts.size !== this.masterCount) return `${masterPorts.size} masters, expected ${this.masterCount}`;
    for (const [i, r] of roles.entries()) {
      if (r.role === 'slave' && r.linkState !== 'connected') {
        return `replica ${this.nodes[i].port} link to ${r.masterPort} is ${r.linkState}`;
      }
    }
    for (const node of this.nodes) {
      const info = parseInfo(String(await node.command('CLUSTER', 'INFO')));
      if (info.cluster_state !== this.expectedState) return `${node.port} cluster_state:${info.cluster_state}`;
      if (Number(info.cluster_known_nodes) !== this.nodes.length) {
        return `${node.port} knows ${info.cluster_known_nodes} of ${this.nodes.length} nodes`;
      }
      if (Number(info.cluster_slots_assigned) !== this.assignedSlots) {
        return `${node.port} sees ${info.cluster_slots_assigned} of ${this.assignedSlots} slots assigned`;
      }
      for (const line of String(await node.command('CLUSTER', 'NODES')).trim().split('\n')) {
        // <id> <ip:port@cport> <flags> ...
        const [, address, flags] = line.split(' ');
        const port = Number(address.split('@')[0].split(':')[1]);
        const bad = flags.split(',').find((f) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(f));
        if (bad !== undefined) return `${node.port} flags ${port} as ${bad}`;
        if (flags.split(',').includes('master') !== masterPorts.has(port)) {
          return `${node.port} does not yet see ${port}'s current role`;
        }
      }
    }
    return undefined;
  }
}

/**
 * Starts masters × (1 + replicas) nodes and joins them into a cluster, resolved once it has
 * converged (see RedisCluster.waitConverged).
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<RedisCluster> {
  const masterCount = opts.slots?.length ?? opts.masters ?? 3;
  if (opts.slots !== undefined && opts.masters !== undefined && opts.masters !== opts.slots.length) {
    throw new Error(`masters (${opts.masters}) disagrees with slots (${opts.slots.length} layouts)`);
  }
  const replicasPerMaster = opts.replicas ?? 1;
  const layout = opts.slots ?? evenSplit(masterCount);
  const assignedSlots = countSlots(layout);

  const config: RedisConfig = {
    // A layout with holes would otherwise leave the whole cluster refusing every query.
    'cluster-require-full-coverage': assignedSlots === SLOT_COUNT ? 'yes' : 'no',
    ...opts.config,
    'cluster-enabled': 'yes',
    'cluster-config-file': 'nodes.conf',
    'cluster-node-timeout': String(opts.nodeTimeoutMs ?? 2000),
  };
  // Replicas authenticate to their masters with the same password the test set.
  if (config.requirepass !== undefined && config.masterauth === undefined) config.masterauth = config.requirepass;
  const expectedState = assignedSlots === SLOT_COUNT || config['cluster-require-full-coverage'] === 'no' ? 'ok' : 'fail';

  const started = await Promise.allSettled(
    Array.from({ length: masterCount * (1 + replicasPerMaster) }, () =>
      startRedis({
        config,
        args: opts.args,
        binary: opts.binary,
        cliBinary: opts.cliBinary,
        startTimeoutMs: opts.startTimeoutMs,
        stopTimeoutMs: opts.stopTimeoutMs,
      }),
    ),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw failed.reason;
  }

  const cluster = new RedisCluster(nodes, masterCount, expectedState, assignedSlots);
  try {
    // redis-cli refuses fewer than three masters and knows no custom layouts.
    if (opts.slots === undefined && masterCount >= 3) await createWithRedisCli(nodes, replicasPerMaster);
    else await createByHand(nodes, masterCount, replicasPerMaster, layout, opts.readyTimeoutMs ?? 30_000);
    await cluster.waitConverged(opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

async function createWithRedisCli(nodes: RedisServer[], replicasPerMaster: number): Promise<void> {
  const addresses = nodes.map((n) => `${n.host}:${n.port}`);
  await nodes[0].cli('--cluster', 'create', ...addresses, '--cluster-replicas', String(replicasPerMaster), '--cluster-yes');
}

async function createByHand(
  nodes: RedisServer[],
  masterCount: number,
  replicasPerMaster: number,
  layout: SlotRanges[],
  timeoutMs: number,
): Promise<void> {
  const ids = (await Promise.all(nodes.map((n) => n.command('CLUSTER', 'MYID')))).map(String);
  // Distinct epochs up front, as redis-cli does, so nodes need not resolve epoch collisions after meeting.
  await Promise.all(nodes.map((n, i) => n.command('CLUSTER', 'SET-CONFIG-EPOCH', i + 1)));
  await Promise.all(
    layout.map((ranges, i) => {
      const slots = ranges.flatMap(([start, end]) => Array.from({ length: end - start + 1 }, (_, k) => start + k));
      // ADDSLOTS rather than ADDSLOTSRANGE: the latter needs Redis 7 and binary may be older.
      return slots.length === 0 ? undefined : nodes[i].command('CLUSTER', 'ADDSLOTS', ...slots);
    }),
  );
  await Promise.all(nodes.slice(1).map((n) => n.command('CLUSTER', 'MEET', HOST, nodes[0].port)));
  // CLUSTER REPLICATE fails with "Unknown node" until the replica has heard of its master.
  const deadline = Date.now() + timeoutMs;
  for (let r = masterCount; r < nodes.length; r++) {
    const master = Math.floor((r - masterCount) / replicasPerMaster);
    for (;;) {
      try {
        await nodes[r].command('CLUSTER', 'REPLICATE', ids[master]);
        break;
      } catch (err) {
        if (!/Unknown node/i.test((err as Error).message) || Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
  }
}

/** The split redis-cli makes: contiguous ranges, sizes differing by at most one. */
function evenSplit(masters: number): SlotRanges[] {
  return Array.from({ length: masters }, (_, i) => [
    [Math.round((i * SLOT_COUNT) / masters), Math.round(((i + 1) * SLOT_COUNT) / masters) - 1],
  ]);
}

function countSlots(layout: SlotRanges[]): number {
  const seen = new Set<number>();
  for (const ranges of layout) {
    for (const [start, end] of ranges) {
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end >= SLOT_COUNT || start > end) {
        throw new Error(`bad slot range [${start}, ${end}]`);
      }
      for (let s = start; s <= end; s++) {
        if (seen.has(s)) throw new Error(`slot ${s} is assigned twice`);
        seen.add(s);
      }
    }
  }
  return seen.size;
}

function parseInfo(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}
