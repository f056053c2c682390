/**
 * Throw-away redis-server processes for benchmarks that generate data sets.
 *
 * Deliberately self-contained (not test/harness): a benchmark only needs start, redis-cli
 * and stop, and must keep working whatever the test harness becomes. Every server started
 * here is tracked; `stopAllServers()` stops them, and a process 'exit' listener SIGKILLs
 * any that are left (uncaught error, Ctrl-C), so a failed run never leaves one behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const HOST = '127.0.0.1';

export interface BenchServer {
  readonly port: number;
  /** The server's working directory (where SAVE writes dump.rdb). */
  readonly dir: string;
  readonly pid: number;
  /** Runs redis-cli against this server and resolves with its trimmed stdout. */
  cli(...args: string[]): Promise<string>;
  /** SIGTERM (SIGKILL after 10 s), then removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<{ child: ChildProcess; dir: string }>();

process.on('exit', () => {
  for (const s of live) {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server in a new directory under `parentDir` (persistence off, so nothing is
 * written until an explicit SAVE), and resolves once it answers PING.
 */
export async function startServer(parentDir: string, extraArgs: string[] = []): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(parentDir, 'redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir,
    '--logfile', path.join(dir, 'redis.log'), ...extraArgs];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const entry = { child, dir };
  live.add(entry);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => undefined); // surfaces below as "exited before answering PING"

  const cli = async (...cmd: string[]): Promise<string> => {
    const { stdout } = await execFileAsync('redis-cli', ['-h', HOST, '-p', String(port), ...cmd], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const out = stdout.trim();
    if (out.startsWith('(error)') || out.startsWith('ERR ')) throw new Error(`redis-cli ${cmd.join(' ')}: ${out}`);
    return out;
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      live.delete(entry);
    })();
    return stopping;
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`redis-server on port ${port} exited before answering PING (args: ${args.join(' ')})`);
    }
    try {
      if ((await cli('PING')) === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
    }
    await sleep(50);
  }
  return { port, dir, pid: child.pid as number, cli, stop };
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllServers(): Promise<void> {
  await Promise.allSettled([...live].map(async (s) => {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const done = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGKILL');
      await done;
    }
    rmSync(s.dir, { recursive: true, force: true });
    live.delete(s);
  }));
}
