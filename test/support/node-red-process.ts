import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FlowNode } from './node-red';
import { freePort } from './net';
import { nodeRedPackageDir } from './node-red-runtime';

const ROOT = resolve(__dirname, '..', '..');

/**
 * A real Node-RED process running the built nodes (dist/nodes) with a given flow: what a
 * user runs, and what a test can kill -9 in the middle of a sync. `settings` go into its
 * settings.js besides what every run needs.
 */
export class NodeRedProcess {
  private child: ChildProcess | null = null;
  /** Output of the current process; `history` keeps that of earlier ones. */
  log = '';
  history = '';
  /** The port of its editor and admin API (a new one at each start). */
  port = 0;

  constructor(
    readonly userDir: string,
    private readonly flow: FlowNode[] = [],
    private readonly settings: Record<string, unknown> = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async start(): Promise<void> {
    // installed as a user installs it: the package in the user directory's node_modules
    mkdirSync(join(this.userDir, 'node_modules'), { recursive: true });
    const link = join(this.userDir, 'node_modules', 'node-red-contrib-redis-sync');
    if (!existsSync(link)) symlinkSync(ROOT, link, 'dir');
    this.port = await freePort();
    writeFileSync(join(this.userDir, 'flows.json'), JSON.stringify(this.flow));
    writeFileSync(
      join(this.userDir, 'settings.js'),
      `module.exports = ${JSON.stringify({
        uiHost: '127.0.0.1',
        uiPort: this.port,
        flowFile: 'flows.json',
        credentialSecret: false,
        logging: { console: { level: 'info', metrics: false, audit: false } },
        ...this.settings,
      })};`,
    );
    this.history += this.log;
    this.log = '';
    const child = spawn(process.execPath, [join(nodeRedPackageDir(), 'red.js'), '--userDir', this.userDir, '--settings', join(this.userDir, 'settings.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!/Started flows/.test(this.log)) {
      if (child.exitCode !== null) throw new Error(`Node-RED exited with ${child.exitCode}:\n${this.log.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`Node-RED did not start the flows:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** kill -9: no close handler runs, nothing is flushed. */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }
}

/** Children still running when the test process exits are killed with it. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});
