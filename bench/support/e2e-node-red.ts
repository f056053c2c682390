/**
 * A real Node-RED process for bench/e2e.ts: the same setup as test/support/node-red-process.ts
 * (node-red's red.js with a userDir, this package installed into the userDir's node_modules by
 * symlink), plus what a benchmark needs and that class does not expose: the pid (VmRSS, VmHWM,
 * CPU time from /proc), extra node flags (--cpu-prof), flows deployed through the admin HTTP
 * API (POST /flows, a full deploy, as the editor's Deploy button does), and the lines that the
 * bench's function nodes log (`E2E-PROGRESS {...}`, `E2E-SINK {...}`) parsed as they arrive.
 *
 * The package is installed from a snapshot (`snapshotPackage`): package.json and dist/ copied
 * into the bench's scratch directory when the run starts, so an `npm run build` of another
 * engineer (which removes dist/ first) cannot pull files from under a running Node-RED. The
 * snapshot lives under the repository, so its dependencies resolve to the repository's
 * node_modules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [property: string]: unknown;
}

export const PACKAGE_NAME = 'node-red-contrib-redis-sync';

/** Copies package.json and dist/ of `root` into `dest` (waiting up to 60 s for a build in progress). */
export async function snapshotPackage(root: string, dest: string): Promise<{ nodes: string[] }> {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
  const files = Object.values(pkg['node-red'].nodes);
  const deadline = Date.now() + 60_000;
  while (!files.every((f) => existsSync(path.join(root, f)))) {
    if (Date.now() > deadline) throw new Error(`dist/ is incomplete (missing ${files.filter((f) => !existsSync(path.join(root, f))).join(', ')}): run npm run build`);
    await sleep(500);
  }
  await sleep(200); // a build that just finished its last file
  mkdirSync(dest, { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dest, 'package.json'));
  cpSync(path.join(root, 'dist'), path.join(dest, 'dist'), { recursive: true });
  return { nodes: Object.keys(pkg['node-red'].nodes) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface TaggedLine {
  /** performance.now() of this process when the line arrived. */
  t: number;
  tag: 'PROGRESS' | 'SINK';
  data: Record<string, unknown>;
}

/** BENCH_E2E_NODE_LOG: a file that gets all Node-RED prints, e.g. its --trace-gc lines. */
const NODE_LOG = process.env.BENCH_E2E_NODE_LOG || undefined;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export class NodeRedChild {
  readonly tagged: TaggedLine[] = [];
  /** Warnings and errors the runtime logged (first 200). */
  readonly problems: string[] = [];
  private tail: string[] = [];
  private partial = '';
  private readonly listeners = new Set<(l: TaggedLine) => void>();
  private exited: Promise<void>;
  /** performance.now() of this process when the child was spawned (a --cpu-prof profile starts about then). */
  readonly spawnedAt = performance.now();

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly userDir: string,
  ) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const onData = (d: Buffer): void => this.onData(d.toString('utf8'));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts Node-RED with an empty flow; resolves once it listens and has started the flows.
   * `nodeArgs` go before red.js (e.g. --cpu-prof); the profile is written when it exits on SIGTERM.
   */
  static async start(opts: { userDir: string; packageDir: string; nodeArgs?: string[] }): Promise<NodeRedChild> {
    const { userDir } = opts;
    mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
    const link = path.join(userDir, 'node_modules', PACKAGE_NAME);
    if (!existsSync(link)) symlinkSync(opts.packageDir, link, 'dir');
    writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'e2e-bench-user-dir', private: true, dependencies: { [PACKAGE_NAME]: '*' } }));
    const port = await freePort();
    writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify([{ id: 'e2e-tab', type: 'tab', label: 'e2e bench' }]));
    writeFileSync(
      path.join(userDir, 'settings.js'),
      `module.exports = ${JSON.stringify({
        uiHost: '127.0.0.1',
        uiPort: port,
        flowFile: 'flows.json',
        credentialSecret: false,
        logging: { console: { level: 'info', metrics: false, audit: false } },
      })};
// for the bench's progress logger (a function node): where the process's memory is
module.exports.functionGlobalContext = { memoryUsage: () => process.memoryUsage() };`,
    );
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: userDir,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const red = new NodeRedChild(child, port, userDir);
    const deadline = Date.now() + 60_000;
    while (!red.tail.some((l) => /Started flows/.test(l)) || !red.tail.some((l) => /Server now running/.test(l))) {
      if (!red.alive) throw new Error(`Node-RED exited with ${child.exitCode ?? child.signalCode}:\n${red.logTail()}`);
      if (Date.now() > deadline) {
        await red.stop();
        throw new Error(`Node-RED did not start within 60 s:\n${red.logTail()}`);
      }
      await sleep(50);
    }
    const loaded = red.tail.join('\n');
    if (!loaded.includes(PACKAGE_NAME) && /Waiting for missing types/.test(loaded)) throw new Error(`Node-RED did not load ${PACKAGE_NAME}:\n${red.logTail()}`);
    return red;
  }

  logTail(lines = 60): string {
    return this.tail.slice(-lines).join('\n');
  }

  onTagged(fn: (l: TaggedLine) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private onData(text: string): void {
    if (NODE_LOG !== undefined) appendFileSync(NODE_LOG, text);
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    const t = performance.now();
    for (const line of lines) {
      const m = /E2E-(PROGRESS|SINK) (\{.*\})\s*$/.exec(line);
      if (m) {
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(m[2]) as Record<string, unknown>;
        } catch {
          continue;
        }
        const l: TaggedLine = { t, tag: m[1] as TaggedLine['tag'], data };
        this.tagged.push(l);
        if (this.tagged.length > 50_000) this.tagged.splice(0, 10_000);
        for (const fn of this.listeners) fn(l);
        continue;
      }
      this.tail.push(line);
      if (this.tail.length > 400) this.tail.splice(0, 100);
      // the two start-up warnings of every settings file without projects and credentialSecret are not news
      if (/\[(warn|error)\]/.test(line) && !/Projects disabled|unencrypted credentials/.test(line) && this.problems.length < 200) this.problems.push(line.trim());
    }
  }

  /** A full deploy of `flow` through the admin API; resolves when the runtime has started it. */
  async deploy(flow: FlowNode[]): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.port}/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full', 'Node-RED-API-Version': 'v1' },
      body: JSON.stringify(flow),
    });
    if (res.status !== 204) throw new Error(`deploy failed: HTTP ${res.status} ${await res.text()}`);
  }

  /** Undeploys everything (the close handlers have run when it resolves). */
  undeploy(): Promise<void> {
    return this.deploy([{ id: 'e2e-tab', type: 'tab', label: 'e2e bench' }]);
  }

  /** VmRSS and VmHWM in KiB. */
  memory(): { rssKb: number; hwmKb: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  }

  /** User + system CPU seconds used so far. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3): utime is field 14, stime field 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  }

  /** SIGTERM (Node-RED stops the flows and exits; a --cpu-prof profile is written), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const CLK_TCK = 100; // USER_HZ on Linux (getconf CLK_TCK)
