/**
 * Real redis-server processes for tests: started on free ports in throw-away directories,
 * tracked in a module-level registry so that nothing outlives the test run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Redis, { ReplyError, type RedisOptions } from 'ioredis';

const execFileAsync = promisify(execFile);

export const HOST = '127.0.0.1';

/** Redis Cluster listens for its bus on the client port plus this, unless `cluster-port` says otherwise. */
const CLUSTER_BUS_OFFSET = 10000;

/**
 * Written to redis.conf as `name value` lines, so a value of several words becomes several
 * arguments exactly as in a hand-written redis.conf (`'replica 32mb 8mb 10'`); an array gives
 * one line per element (several `save` or `client-output-buffer-limit` lines).
 */
export type RedisConfig = Record<string, string | string[]>;

export interface StartRedisOptions {
  /**
   * Settings on top of the binary's stock configuration (the harness sets only port, dir and
   * bind 127.0.0.1): only what the test is about. A `requirepass` must be a single word: the
   * harness reads it back to authenticate its own connections.
   */
  config?: RedisConfig;
  /** Appended to the command line after the config file, so they override it. */
  args?: string[];
  /** Default: env REDIS_SERVER_BIN, else `redis-server` from PATH. */
  binary?: string;
  /** Default: env REDIS_CLI_BIN, else a `redis-cli` next to `binary`, else `redis-cli` from PATH. */
  cliBinary?: string;
  /** How long the server may take to answer PING (a big RDB to load needs more). Default 10 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SHUTDOWN before SIGKILL. Default 5 s. */
  stopTimeoutMs?: number;
}

interface Stoppable {
  stop(): Promise<void>;
}

const servers = new Set<RedisServer>();
/** Composites (clusters) that own servers and clients of their own. */
const groups = new Set<Stoppable>();
/**
 * Ports this process has handed to servers that may not have bound them yet: two quick
 * listen(0) probes can return the same port, and a probe cannot see a port that is only promised.
 */
const claimedPorts = new Set<number>();

/** Registers a composite so stopAll() stops it; returns the function that unregisters it. */
export function track(group: Stoppable): () => void {
  groups.add(group);
  return () => groups.delete(group);
}

/** Stops every cluster and server still running (the mocha root afterAll hook calls this). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...groups].map((g) => g.stop()));
  await Promise.allSettled([...servers].map((s) => s.stop()));
}

// Last line of defence when the run ends without hooks (uncaught error, process.exit in a test,
// mocha --exit): an 'exit' listener may only do synchronous work, hence SIGKILL and rmSync.
process.on('exit', () => {
  for (const server of servers) server.killNow();
});

class PortInUseError extends Error {}

export class RedisServer implements Stoppable {
  readonly host = HOST;
  readonly url: string;
  readonly logFile: string;
  private readonly clients = new Set<Redis>();
  private readonly exited: Promise<void>;
  private exitStatus: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
    /** The server's `requirepass`, used by client(), cli() and the harness's own connections. */
    readonly password: string | undefined,
    private readonly cliBinary: string,
    private readonly stopTimeoutMs: number,
    private readonly ownedPorts: number[],
  ) {
    this.logFile = path.join(dir, 'redis.log');
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
    this.url = `redis://${auth}${HOST}:${port}`;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve();
      });
    });
  }

  get pid(): number {
    // spawn() only hands us a child once it has a pid (see spawnServer).
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.exitStatus === undefined;
  }

  /** A new ioredis client to this server; stop() disconnects it. */
  client(opts: RedisOptions = {}): Redis {
    const client = new Redis({ host: HOST, port: this.port, password: this.password, ...opts });
    this.clients.add(client);
    client.once('end', () => this.clients.delete(client));
    return client;
  }

  /**
   * One command on a short-lived connection, so harness checks do not show up as extra
   * long-lived clients in the CLIENT LIST that a test may be inspecting.
   */
  async command(...args: (string | number | Buffer)[]): Promise<unknown> {
    const conn = this.probeClient();
    try {
      await conn.connect();
      return await conn.call(String(args[0]), ...args.slice(1));
    } finally {
      conn.disconnect();
    }
  }

  /**
   * Runs `redis-cli -h host -p port [auth] ...args` and resolves with its stdout. It rejects only
   * when redis-cli exits non-zero: a plain command's error reply comes back as "ERR ..." text.
   */
  async cli(...args: string[]): Promise<string> {
    const auth = this.password === undefined ? [] : ['-a', this.password, '--no-auth-warning'];
    try {
      const { stdout } = await execFileAsync(this.cliBinary, ['-h', HOST, '-p', String(this.port), ...auth, ...args], {
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`redis-cli ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
        cause: err,
      });
    }
  }

  readLog(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Sends a signal (SIGKILL to simulate a crash, SIGSTOP/SIGCONT to simulate a hang). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Resolves true once the process has exited, false if it is still running after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<boolean> {
    const exited = this.exited.then(() => true);
    if (timeoutMs === undefined) return exited;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return Promise.race([exited, timedOut]).finally(() => clearTimeout(timer));
  }

  /** SHUTDOWN NOSAVE, SIGKILL if that does not end it in time, then removes the directory. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /** Synchronous teardown for the process 'exit' listener. */
  killNow(): void {
    if (this.alive) this.child.kill('SIGKILL');
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // The process may still be writing its log while dying; a stray temp dir is harmless.
    }
  }

  private async doStop(): Promise<void> {
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
    if (this.alive) {
      // Not awaited: a SIGSTOPped server accepts the connection but never answers.
      const shutdown = this.shutdown();
      if (!(await this.waitForExit(this.stopTimeoutMs))) {
        this.child.kill('SIGKILL');
        await this.waitForExit();
      }
      await shutdown;
    }
    rmSync(this.dir, { recursive: true, force: true });
    for (const port of this.ownedPorts) claimedPorts.delete(port);
    servers.delete(this);
  }

  private async shutdown(): Promise<void> {
    const conn = this.probeClient();
    try {
      await conn.connect();
      // NOW: without it a Redis 7 master waits up to shutdown-timeout for lagging replicas.
      await conn.call('SHUTDOWN', 'NOSAVE', 'NOW').catch(async (err: unknown) => {
        // Servers before 7.0 reject NOW; success shows up as a closed connection instead.
        if (err instanceof ReplyError) await conn.call('SHUTDOWN', 'NOSAVE');
      });
    } catch {
      // Shutdown closes the connection under the pending command; stop() falls back to SIGKILL anyway.
    } finally {
      conn.disconnect();
    }
  }

  /** A connection that fails fast instead of queueing and reconnecting, for the harness's own checks. */
  private probeClient(): Redis {
    const conn = new Redis({
      host: HOST,
      port: this.port,
      password: this.password,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2000,
    });
    // Refused connections during startup are expected; without a listener ioredis logs each one.
    conn.on('error', () => undefined);
    return conn;
  }

  /** Resolves when PING answers PONG (ioredis's ready check also waits out LOADING). Used by startRedis. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no answer yet';
    for (;;) {
      if (!this.alive) throw new Error(`it exited (${this.exitStatus}) before answering PING`);
      try {
        if ((await this.command('PING')) === 'PONG') return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`no PONG within ${timeoutMs} ms (last: ${lastError})`);
      await sleep(20);
    }
  }
}

/** Starts one redis-server and resolves once it answers PING. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // Another process may grab the probed port before redis-server binds it.
      if (!(err instanceof PortInUseError) || attempt === 5) throw err;
    }
  }
}

async function startOnce(opts: StartRedisOptions): Promise<RedisServer> {
  const binary = opts.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const config = lowerCaseKeys(opts.config ?? {});
  const ports = [await claimFreePort(config['cluster-enabled'] === 'yes')];
  const port = ports[0];
  if (config['cluster-enabled'] === 'yes') ports.push(port + CLUSTER_BUS_OFFSET);
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  try {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-sync-test-'));
    const confFile = path.join(dir, 'redis.conf');
    // The binary's stock configuration, as users run it: only what the harness needs to own
    // the server (port, bind, dir) and what the test is about. Harness-owned settings come
    // last so a test's config cannot move the server out from under its handle.
    writeFileSync(confFile, renderConfig({ bind: HOST, ...config, port: String(port), dir }));
    child = await spawnServer(binary, [confFile, ...(opts.args ?? [])], path.join(dir, 'redis.log'));
  } catch (err) {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    for (const p of ports) claimedPorts.delete(p);
    throw err;
  }
  const password = typeof config.requirepass === 'string' ? config.requirepass : undefined;
  const server = new RedisServer(
    port,
    dir,
    child,
    password,
    opts.cliBinary ?? defaultCliBinary(binary),
    opts.stopTimeoutMs ?? 5000,
    ports,
  );
  servers.add(server);
  try {
    await server.waitReady(opts.startTimeoutMs ?? 10_000);
    return server;
  } catch (err) {
    const log = server.readLog();
    await server.stop();
    if (/Address already in use/.test(log)) throw new PortInUseError(`port ${port} was taken`);
    const tail = log.trimEnd().split('\n').slice(-25).join('\n');
    throw new Error(
      `${binary} failed to start on port ${port}: ${(err as Error).message}\n--- tail of ${server.logFile} ---\n${tail}`,
      { cause: err },
    );
  }
}

function spawnServer(binary: string, args: string[], logFile: string): Promise<ChildProcess> {
  // The log gets the file descriptor itself, so the output survives even if this process dies first.
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve(child));
      child.once('error', (err) => reject(new Error(`cannot run ${binary}: ${err.message}`)));
    });
  } finally {
    closeSync(fd);
  }
}

function defaultCliBinary(serverBinary: string): string {
  if (process.env.REDIS_CLI_BIN) return process.env.REDIS_CLI_BIN;
  // A custom server build (another Redis version) comes with its own redis-cli beside it.
  if (serverBinary.includes(path.sep)) {
    const sibling = path.join(path.dirname(serverBinary), 'redis-cli');
    if (existsSync(sibling)) return sibling;
  }
  return 'redis-cli';
}

function lowerCaseKeys(config: RedisConfig): RedisConfig {
  // Redis config names are case-insensitive; without this, 'Save' would not replace the default 'save'.
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k.toLowerCase(), v]));
}

function renderConfig(config: RedisConfig): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(config)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (/[\r\n]/.test(v)) throw new Error(`config ${name}: a value cannot span lines`);
      lines.push(`${name} ${v === '' ? '""' : v}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function claimFreePort(withBusPort: boolean): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await probePort(0);
    if (port === undefined || claimedPorts.has(port)) continue;
    if (withBusPort) {
      const bus = port + CLUSTER_BUS_OFFSET;
      if (bus > 65535 || claimedPorts.has(bus) || (await probePort(bus)) === undefined) continue;
      claimedPorts.add(bus);
    }
    claimedPorts.add(port);
    return port;
  }
  throw new Error('found no free TCP port pair after 100 tries');
}

/** Binds and releases a port; resolves the bound port, or undefined when it is taken. */
function probePort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(undefined));
    probe.listen(port, HOST, () => {
      const bound = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(bound));
    });
  });
}
