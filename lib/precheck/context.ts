/**
 * What the checks share: one connection per master of each endpoint, opened once, each
 * master's INFO, the topology, and measurements several checks need (the write rate). The
 * connecting itself is the reachability / authentication / TLS check: its failures are the
 * first findings, and checks needing an endpoint that could not be reached are skipped.
 */
import { formatSlotRanges, SLOT_COUNT, type SlotRange } from '../cluster/slots';
import { discoverTopology, type RedisLike, type Topology } from '../cluster/topology';
import { DEFAULT_CONNECT_TIMEOUT_MS, describeEndpoint, formatHostPort, validateEndpointConfig, type EndpointConfig } from '../endpoint';
import { RespError } from '../resp/errors';
import { infoNumber, parseInfo, type Info } from '../server/info';
import { OpenFailure, ProbeConnection, type OpenFailureKind } from './connection';
import { SkipCheck, type Finding, type PrecheckOptions, type Side } from './types';
import { text } from './values';

export interface MasterState {
  host: string;
  port: number;
  /** host:port */
  address: string;
  slots: SlotRange[];
  conn: ProbeConnection | null;
  /** INFO (default sections), when the server answered it. */
  info: Info | null;
  /** The raw INFO text (for its section headers). */
  infoText: string;
  /** Why INFO is missing: the server's reply or the connection failure. */
  infoError: string | null;
}

export class EndpointState {
  /** Findings of the connecting: unreachable, refused credentials, TLS on one side only. */
  readonly findings: Finding[] = [];
  /** Every master (the one node of a standalone endpoint), reachable or not. */
  masters: MasterState[] = [];
  /** What the server that answered first reports (INFO), whatever the mode. */
  seedInfo: Info | null = null;
  seedInfoText = '';
  seedInfoError: string | null = null;
  seedAddress = '';
  topology: Topology | null = null;
  /** Set when nothing of this endpoint can be checked (and the findings say why). */
  unusable: string | null = null;
  private readonly extra = new Set<ProbeConnection>();

  constructor(
    readonly side: Side,
    readonly config: EndpointConfig,
  ) {}

  /** Every master whose connection is open; skips the check when the endpoint is unusable. */
  reachableMasters(): MasterState[] {
    if (this.unusable !== null) throw new SkipCheck(`the ${this.side} ${this.unusable}`, true);
    return this.masters.filter((m) => m.conn !== null);
  }

  /** INFO of a master, or the check is skipped naming why it is missing. */
  info(m: MasterState): Info {
    if (m.info === null) throw new SkipCheck(`${this.side} ${m.address}: INFO is not available (${m.infoError ?? 'not connected'})`);
    return m.info;
  }

  /** A connection of its own to a master (for SELECT, or commands that change the connection's state); closed with the context. */
  async open(m: MasterState): Promise<ProbeConnection> {
    const conn = await ProbeConnection.open(this.config, m.host, m.port);
    this.extra.add(conn);
    return conn;
  }

  close(): void {
    for (const m of this.masters) m.conn?.close();
    for (const c of this.extra) c.close();
    this.extra.clear();
  }

  async connect(): Promise<void> {
    const problems = validateEndpointConfig(this.config);
    if (problems.length > 0) {
      this.unusable = 'endpoint configuration is invalid';
      this.findings.push({
        id: 'endpoint-config',
        severity: 'error',
        side: this.side,
        message: `the ${this.side} endpoint configuration is invalid: ${problems.join('; ')}`,
        remedy: 'fix the fields named in the redis-endpoint configuration node',
      });
      return;
    }
    const cfg = this.config;
    const seeds = cfg.mode === 'cluster' ? cfg.seeds : [{ host: cfg.host, port: cfg.port }];
    const failures: OpenFailure[] = [];
    let seed: { conn: ProbeConnection; host: string; port: number } | null = null;
    for (const s of seeds) {
      try {
        seed = { conn: await ProbeConnection.open(cfg, s.host, s.port), ...s };
        break;
      } catch (err) {
        failures.push(asOpenFailure(err, formatHostPort(s.host, s.port)));
      }
    }
    if (seed === null) {
      this.unusable = `could not be reached (${describeEndpoint(cfg)})`;
      for (const f of failures) this.findings.push(this.openFinding(f, 'error'));
      return;
    }
    // A cluster answering through a later seed still works, but the configured seed list has a dead entry.
    for (const f of failures) this.findings.push(this.openFinding(f, 'warning', ` (the cluster answered through ${formatHostPort(seed.host, seed.port)})`));
    this.seedAddress = formatHostPort(seed.host, seed.port);
    const seedInfo = await readInfo(seed.conn);
    this.seedInfo = seedInfo.info;
    this.seedInfoText = seedInfo.infoText;
    this.seedInfoError = seedInfo.infoError;

    // The sink finds a cluster by itself; the replica source trusts the endpoint's mode (see the architecture check).
    const clusterEnabled = seedInfo.info?.cluster_enabled === '1';
    const discover = cfg.mode === 'cluster' || (this.side === 'destination' && clusterEnabled);
    if (!discover) {
      this.masters = [{ host: seed.host, port: seed.port, address: this.seedAddress, slots: [[0, SLOT_COUNT - 1]], conn: seed.conn, ...seedInfo }];
      return;
    }
    try {
      this.topology = await discoverTopology((h, p) => rawClient(cfg, h, p), [seed, ...seeds.filter((s) => s.host !== seed.host || s.port !== seed.port)], {
        timeoutMs: cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        tls: cfg.tls?.enabled === true,
      });
    } catch (err) {
      seed.conn.close();
      this.unusable = 'cluster topology could not be read';
      this.findings.push({
        id: 'architecture',
        severity: 'error',
        side: this.side,
        node: this.seedAddress,
        message: `${this.side} ${this.seedAddress}: the cluster topology could not be read: ${(err as Error).message}`,
        remedy: /NOPERM/.test((err as Error).message)
          ? 'grant the user +info +cluster|shards +cluster|slots +cluster|nodes (what the sync needs to find the masters)'
          : 'point the endpoint at the cluster nodes themselves: a proxy in front of a cluster hides its topology',
      });
      return;
    }
    const seedConn = seed.conn;
    let seedUsed = false;
    this.masters = await Promise.all(
      this.topology.shards.map(async (shard): Promise<MasterState> => {
        const { host, port } = shard.master;
        const address = formatHostPort(host, port);
        const base = { host, port, address, slots: shard.slots };
        let conn: ProbeConnection;
        if (address === this.seedAddress && !seedUsed) {
          seedUsed = true;
          conn = seedConn;
        } else {
          try {
            conn = await ProbeConnection.open(cfg, host, port);
          } catch (err) {
            const f = asOpenFailure(err, address);
            this.findings.push(this.openFinding(f, 'error', ` (a master serving slots ${formatSlotRanges(shard.slots)})`));
            return { ...base, conn: null, info: null, infoText: '', infoError: f.message };
          }
        }
        return { ...base, conn, ...(conn === seedConn ? seedInfo : await readInfo(conn)) };
      }),
    );
    if (!seedUsed) seedConn.close();
  }

  private openFinding(f: OpenFailure, severity: 'error' | 'warning', suffix = ''): Finding {
    const node = /^(\[[^\]]+\]|[^:\s]+):\d+/.exec(f.message)?.[0];
    return {
      id: f.kind,
      severity,
      side: this.side,
      ...(node === undefined ? {} : { node }),
      message: `${this.side} ${f.message}${suffix}`,
      remedy: remedyFor(f, this.config),
    };
  }
}

export class PrecheckContext {
  readonly source: EndpointState;
  readonly destination: EndpointState;
  readonly options: Required<Omit<PrecheckOptions, 'databases'>> & Pick<PrecheckOptions, 'databases'>;
  private readonly rates = new Map<MasterState, Promise<WriteRate>>();

  constructor(source: EndpointConfig, destination: EndpointConfig, options: PrecheckOptions = {}) {
    this.source = new EndpointState('source', source);
    this.destination = new EndpointState('destination', destination);
    this.options = {
      requireEmptyDestination: options.requireEmptyDestination ?? false,
      typedFallback: options.typedFallback ?? true,
      databases: options.databases,
      writeRateSampleMs: options.writeRateSampleMs ?? 1000,
      minBacklogSeconds: options.minBacklogSeconds ?? 60,
      keySample: options.keySample ?? 300,
    };
  }

  endpoint(side: Side): EndpointState {
    return side === 'source' ? this.source : this.destination;
  }

  async connect(): Promise<void> {
    await Promise.all([this.source.connect(), this.destination.connect()]);
  }

  close(): void {
    this.source.close();
    this.destination.close();
  }

  /**
   * Bytes a source master adds to its replication stream per second, sampled over
   * writeRateSampleMs; shared by the checks that need it, so the source is sampled once.
   */
  writeRate(m: MasterState): Promise<WriteRate> {
    let rate = this.rates.get(m);
    if (rate === undefined) {
      rate = sampleWriteRate(m, this.options.writeRateSampleMs);
      this.rates.set(m, rate);
    }
    return rate;
  }
}

export interface WriteRate {
  bytesPerSecond: number;
  /** What was measured: the replication offset, or (no backlog yet) all bytes clients sent, an upper bound. */
  basis: 'master_repl_offset' | 'total_net_input_bytes';
}

async function sampleWriteRate(m: MasterState, ms: number): Promise<WriteRate> {
  const conn = m.conn as ProbeConnection;
  const sample = async (): Promise<{ at: number; info: Info }> => {
    const r = await conn.call(['INFO']);
    if (r instanceof RespError) throw new SkipCheck(`source ${m.address}: INFO refused (${r.message})`);
    return { at: Date.now(), info: parseInfo(text(r)) };
  };
  const a = await sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = await sample();
  const elapsed = (b.at - a.at) / 1000;
  // master_repl_offset only moves while a backlog exists, i.e. once some replica has connected.
  if (a.info.repl_backlog_active === '1' && b.info.repl_backlog_active === '1') {
    return { bytesPerSecond: Math.max(0, ((infoNumber(b.info, 'master_repl_offset') ?? 0) - (infoNumber(a.info, 'master_repl_offset') ?? 0)) / elapsed), basis: 'master_repl_offset' };
  }
  const input = (infoNumber(b.info, 'total_net_input_bytes') ?? 0) - (infoNumber(a.info, 'total_net_input_bytes') ?? 0);
  return { bytesPerSecond: Math.max(0, input / elapsed), basis: 'total_net_input_bytes' };
}

async function readInfo(conn: ProbeConnection): Promise<Pick<MasterState, 'info' | 'infoText' | 'infoError'>> {
  try {
    const r = await conn.call(['INFO']);
    if (r instanceof RespError) return { info: null, infoText: '', infoError: r.message };
    const t = text(r);
    return { info: parseInfo(t), infoText: t, infoError: null };
  } catch (err) {
    return { info: null, infoText: '', infoError: (err as Error).message };
  }
}

/** A ProbeConnection as topology discovery wants it: error replies reject. */
async function rawClient(cfg: EndpointConfig, host: string, port: number): Promise<RedisLike> {
  const conn = await ProbeConnection.open(cfg, host, port);
  return {
    call: (command, ...args) => conn.ok([command, ...args]),
    disconnect: () => conn.close(),
  };
}

function asOpenFailure(err: unknown, address: string): OpenFailure {
  if (err instanceof OpenFailure) return err;
  return new OpenFailure('connection', `${address}: ${(err as Error).message}`);
}

function remedyFor(f: OpenFailure, cfg: EndpointConfig): string {
  const kind: OpenFailureKind = f.kind;
  switch (kind) {
    case 'connection':
      return 'check the host and port, that the server is running, and that firewalls and allowlists let this machine in';
    case 'auth':
      return 'check the user and password of the endpoint (an ACL user must be "on" and have this password; a `user:password` password also works)';
    case 'protocol':
      return 'this port does not speak the Redis protocol: point the endpoint at the Redis port itself';
    case 'tls':
      // What TLS itself said (a certificate refused on either side), not the hint around it.
      if (f.cause instanceof Error && /certificate/i.test(f.cause.message)) {
        return 'give the endpoint the CA that signed the server certificate (and the server name it is issued for, and a client certificate if the server demands one); turning verification off is for tests only';
      }
      return cfg.tls?.enabled === true
        ? 'turn TLS off for this endpoint, or point it at the server\'s tls-port'
        : 'turn TLS on for this endpoint (with the CA that signed the server certificate)';
  }
}
