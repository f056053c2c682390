// `npm start`: a live demo on this machine. Starts a standalone source Redis with sample data
// of every type and a writer that keeps changing it, a 3-master destination cluster, and
// Node-RED with this package and examples/demo-standalone-to-cluster.json pointed at them.
// Ctrl-C (SIGINT) or SIGTERM stops everything it started and removes .demo/.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setInterval, clearInterval } from 'node:timers';
import Redis, { Cluster } from 'ioredis';
import { seed, startWriter } from './demo/data.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO = path.join(ROOT, '.demo');
const EXAMPLE = path.join(ROOT, 'examples', 'demo-standalone-to-cluster.json');
const HOST = '127.0.0.1';
const require = createRequire(import.meta.url);
const color = process.stdout.isTTY ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
const bold = (t) => color(1, t);
const dim = (t) => color(2, t);

/** Every child process started here, by role: stopped in reverse order of start. */
const children = [];
let writer = null;
let monitor = null;
let shuttingDown = null;
/** Set once this run has taken .demo/ over; only then does it remove it. */
let ownsDemoDir = false;

function say(line = '') {
  process.stdout.write(`${line}\n`);
}

function fail(message) {
  process.stderr.write(`\n${color(31, 'demo:')} ${message}\n`);
}

// ---------------------------------------------------------------- prerequisites

function redisServerVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return /v=(\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

function nodeRedScript() {
  try {
    return path.join(path.dirname(require.resolve('node-red/package.json')), 'red.js');
  } catch {
    return null;
  }
}

function builtNodesMissing() {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return Object.values(pkg['node-red'].nodes).filter((file) => !existsSync(path.join(ROOT, file)));
}

const PIDS = path.join(DEMO, 'pids.json');

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/**
 * What an earlier demo recorded in .demo/pids.json: `running` when that demo is still up,
 * else the processes it left behind (killed too hard to clean up) that are still the same
 * programs (a recycled pid is left alone).
 */
function earlierDemo() {
  if (!existsSync(PIDS)) return { running: false, left: [] };
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(PIDS, 'utf8'));
  } catch {
    return { running: false, left: [] };
  }
  if (alive(recorded.demo) && cmdline(recorded.demo).includes('demo.mjs')) return { running: true, pid: recorded.demo, left: [] };
  const left = recorded.children.filter((c) => alive(c.pid) && cmdline(c.pid).includes(c.match));
  return { running: false, left };
}

function recordPids() {
  const list = children.filter((c) => !c.exited).map((c) => ({ pid: c.child.pid, name: c.name, match: c.match }));
  writeFileSync(PIDS, JSON.stringify({ demo: process.pid, children: list }, null, 2));
}

// ---------------------------------------------------------------- ports

function isFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

const claimed = new Set();

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function freeRedisPort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (claimed.has(port) || claimed.has(port + 10000)) continue;
    if ((await isFree(port)) && (await isFree(port + 10000))) {
      claimed.add(port);
      claimed.add(port + 10000);
      return port;
    }
  }
  throw new Error('found no free port for a redis-server');
}

async function nodeRedPort() {
  for (let port = 1880; port < 1980; port++) if (await isFree(port)) return port;
  throw new Error('ports 1880 to 1979 are all taken');
}

// ---------------------------------------------------------------- redis servers

/** `match`: a part of the process's command line, to recognise it in a later run. */
function track(name, child, match, extra = {}) {
  const entry = { name, child, match, exited: false, ...extra };
  entry.done = new Promise((resolve) => child.once('exit', resolve));
  child.once('exit', () => (entry.exited = true));
  children.push(entry);
  recordPids();
  return entry;
}

async function startRedis(name, port, clusterNode) {
  const dir = path.join(DEMO, `redis-${name}`);
  mkdirSync(dir, { recursive: true });
  const conf = [
    `port ${port}`,
    `bind ${HOST}`,
    `dir ${dir}`,
    `logfile ${path.join(dir, 'redis.log')}`,
    'daemonize no',
    ...(clusterNode ? ['cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 5000'] : []),
  ];
  const confFile = path.join(dir, 'redis.conf');
  writeFileSync(confFile, `${conf.join('\n')}\n`);
  // detached: a Ctrl-C in the terminal reaches this script only, which then stops the servers in order
  const child = spawn('redis-server', [confFile], { cwd: dir, stdio: 'ignore', detached: true });
  const entry = track(`redis ${name}`, child, `${HOST}:${port}`, { port, dir });
  const deadline = Date.now() + 15000;
  for (;;) {
    if (entry.exited) throw new Error(`redis-server ${name} (port ${port}) exited at once:\n${tail(path.join(dir, 'redis.log'))}`);
    const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return entry;
    } catch {
      // not listening yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server ${name} (port ${port}) did not answer PING:\n${tail(path.join(dir, 'redis.log'))}`);
    await sleep(50);
  }
}

function tail(file, lines = 15) {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n') : '(no log)';
}

async function makeCluster(ports) {
  const clients = ports.map((port) => new Redis({ host: HOST, port }));
  try {
    const per = Math.floor(16384 / ports.length);
    for (const [i, c] of clients.entries()) {
      const first = i * per;
      const last = i === ports.length - 1 ? 16383 : first + per - 1;
      const slots = Array.from({ length: last - first + 1 }, (_, k) => first + k);
      await c.call('CLUSTER', 'ADDSLOTS', ...slots);
    }
    for (const port of ports.slice(1)) await clients[0].call('CLUSTER', 'MEET', HOST, String(port));
    const deadline = Date.now() + 30000;
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO')));
      const ok = infos.every((info) => /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${ports.length}\\b`).test(info));
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not become ready:\n${infos[0]}`);
      await sleep(100);
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}

// ---------------------------------------------------------------- Node-RED

function demoFlow(sourcePort, clusterPorts) {
  const flow = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
  const sourceEndpoints = new Set(flow.filter((n) => n.type === 'redis-replica-source').map((n) => n.endpoint));
  for (const n of flow) {
    if (n.type === 'tab' && typeof n.info === 'string') {
      // the flow's description names the ports this demo uses
      n.info = n.info.replace('127.0.0.1:6379', `${HOST}:${sourcePort}`).replace('127.0.0.1:7000-7002', clusterPorts.map((p) => `${HOST}:${p}`).join(', '));
    }
    if (n.type !== 'redis-endpoint') continue;
    if (sourceEndpoints.has(n.id)) Object.assign(n, { mode: 'standalone', host: HOST, port: String(sourcePort) });
    else Object.assign(n, { mode: 'cluster', host: HOST, port: String(clusterPorts[0]), seeds: clusterPorts.map((p) => `${HOST}:${p}`).join(',') });
  }
  return flow;
}

async function startNodeRed(redJs, port, flow) {
  const userDir = path.join(DEMO, 'node-red');
  mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  // installed as a user installs a package: in the user directory's node_modules
  symlinkSync(ROOT, path.join(userDir, 'node_modules', 'node-red-contrib-redis-sync'), 'dir');
  writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'redis-sync-demo', private: true, dependencies: { 'node-red-contrib-redis-sync': `file:${ROOT}` } }, null, 2));
  writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow, null, 2));
  const settings = {
    uiHost: HOST,
    uiPort: port,
    flowFile: 'flows.json',
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    editorTheme: { tours: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
  const settingsFile = path.join(userDir, 'settings.js');
  writeFileSync(settingsFile, `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  const logFile = path.join(DEMO, 'node-red.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [redJs, '--userDir', userDir, '--settings', settingsFile], {
    cwd: userDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const entry = track('Node-RED', child, userDir, { logFile });
  let output = '';
  let started = false;
  const forward = (data) => {
    const text = data.toString();
    output += text;
    writeSync(log, text);
    if (!started) return;
    for (const line of text.split('\n')) if (line.trim() !== '') say(dim(`[node-red] ${line}`));
  };
  child.stdout.on('data', forward);
  child.stderr.on('data', forward);
  child.once('close', () => closeSync(log));
  const deadline = Date.now() + 60000;
  while (!/Started flows/.test(output)) {
    if (entry.exited) throw new Error(`Node-RED exited while starting:\n${output.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`Node-RED did not start its flows within a minute:\n${output.slice(-3000)}`);
    await sleep(100);
  }
  started = true;
  for (const line of output.trim().split('\n').filter((l) => /\[error\]/.test(l))) say(dim(`[node-red] ${line}`));
  return entry;
}

// ---------------------------------------------------------------- monitor

/** Every 10 s: how far the writer got and whether the destination keeps up. */
function startMonitor(sourcePort, clusterPorts) {
  const source = new Redis({ host: HOST, port: sourcePort });
  const dest = new Cluster(clusterPorts.map((port) => ({ host: HOST, port })));
  source.on('error', () => {});
  dest.on('error', () => {});
  let busy = false;
  const timer = setInterval(async () => {
    if (busy || shuttingDown) return;
    busy = true;
    try {
      const [src, dst] = await Promise.all([source.get('counter:visits'), dest.get('db0:counter:visits')]);
      const [srcLen, dstLen] = await Promise.all([source.xlen('stream:orders'), dest.xlen('db0:stream:orders').catch(() => 0)]);
      say(`${bold('check')}  counter:visits source ${src} / destination ${dst ?? '-'}   stream:orders ${srcLen} / ${dstLen}   (${writer?.writes() ?? 0} writes so far)`);
    } catch (err) {
      say(`${bold('check')}  ${err.message}`);
    } finally {
      busy = false;
    }
  }, 10000);
  return {
    stop() {
      clearInterval(timer);
      source.disconnect();
      dest.disconnect();
    },
  };
}

// ---------------------------------------------------------------- shutdown

async function stopChild(entry, timeoutMs) {
  if (entry.exited) return;
  try {
    entry.child.kill('SIGTERM');
  } catch {
    return;
  }
  const timedOut = await Promise.race([entry.done.then(() => false), sleep(timeoutMs).then(() => true)]);
  if (timedOut && !entry.exited) {
    say(`${entry.name} did not stop within ${timeoutMs / 1000} s: SIGKILL`);
    entry.child.kill('SIGKILL');
    await entry.done;
  }
}

function shutdown(reason, code = 0) {
  shuttingDown ??= (async () => {
    say();
    say(`${bold('Stopping')} (${reason}) …`);
    monitor?.stop();
    await writer?.stop();
    // Node-RED first (its close handlers flush the sink), then the servers
    for (const entry of [...children].reverse()) {
      await stopChild(entry, entry.name === 'Node-RED' ? 15000 : 5000);
      say(`  stopped ${entry.name}`);
    }
    if (ownsDemoDir) rmSync(DEMO, { recursive: true, force: true });
    say(`  removed ${path.relative(process.cwd(), DEMO) || DEMO}`);
    process.exit(code);
  })();
  return shuttingDown;
}

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) {
      say('Second signal: killing everything now.');
      process.exit(130); // the 'exit' handler kills and removes
    }
    void shutdown(sig);
  });
}

// Last resort (an error, or process.exit while stopping): nothing outlives the script.
process.on('exit', () => {
  for (const entry of children) if (!entry.exited) entry.child.kill('SIGKILL');
  if (ownsDemoDir) rmSync(DEMO, { recursive: true, force: true });
});

// ---------------------------------------------------------------- main

async function main() {
  const version = redisServerVersion();
  if (version === null) {
    fail(
      [
        'redis-server is not on your PATH. The demo starts its own Redis servers; install them first:',
        '',
        '  Debian/Ubuntu:  sudo apt-get install redis-server redis-tools',
        '                  (then `sudo service redis-server stop` if you do not want the system instance)',
        '  macOS:          brew install redis',
        '',
        'and run `npm start` again.',
      ].join('\n'),
    );
    process.exit(1);
  }
  const redJs = nodeRedScript();
  if (redJs === null || !existsSync(redJs)) {
    fail('node-red is not installed here: run `npm install` in this folder first (it is a devDependency).');
    process.exit(1);
  }
  const earlier = earlierDemo();
  if (earlier.running) {
    fail(`a demo is already running from this folder (pid ${earlier.pid}): stop it with Ctrl-C (or kill -INT ${earlier.pid}) first.`);
    process.exit(1);
  }
  if (earlier.left.length > 0) {
    say(`Stopping what an earlier demo left running: ${earlier.left.map((c) => `${c.name} (pid ${c.pid})`).join(', ')}`);
    for (const c of earlier.left) process.kill(c.pid, 'SIGKILL');
    await sleep(200);
  }
  ownsDemoDir = true;
  rmSync(DEMO, { recursive: true, force: true });
  mkdirSync(DEMO, { recursive: true });

  const missing = builtNodesMissing();
  if (missing.length > 0) {
    say(`${bold('Building')} (dist/ is missing ${missing.length} node file(s)) …`);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('the build failed');
  }

  say(`${bold('Starting')} Redis ${version} servers …`);
  const sourcePort = await freeRedisPort();
  const clusterPorts = [await freeRedisPort(), await freeRedisPort(), await freeRedisPort()];
  await startRedis('source', sourcePort, false);
  const keys = await seed({ host: HOST, port: sourcePort });
  say(`  source       redis://${HOST}:${sourcePort}  standalone, ${keys} keys in dbs 0-2 (strings, lists, sets, sorted sets, hashes, streams, geo, HyperLogLog, bitmaps, TTLs, a binary key)`);
  for (const [i, port] of clusterPorts.entries()) await startRedis(`cluster-${i + 1}`, port, true);
  await makeCluster(clusterPorts);
  say(`  destination  cluster of 3 masters on ${clusterPorts.map((p) => `${HOST}:${p}`).join(', ')}, empty`);
  writer = startWriter({ host: HOST, port: sourcePort });
  say('  writer       about 90 writes a second into the source (INCR, HINCRBY, LPUSH, XADD, ZINCRBY, SET EX, MSET, MULTI)');

  const uiPort = await nodeRedPort();
  say(`${bold('Starting')} Node-RED on port ${uiPort} …`);
  await startNodeRed(redJs, uiPort, demoFlow(sourcePort, clusterPorts));
  monitor = startMonitor(sourcePort, clusterPorts);

  const url = `http://${HOST}:${uiPort}`;
  say();
  say(bold('The demo is running.'));
  say();
  say(`  Open ${bold(url)}  (flow tab "Sync a standalone Redis into a cluster")`);
  say();
  say('  What to look at:');
  say('  - the status under each node: replica source "full … keys", then "streaming lag …"; op filter "kept …, -0";');
  say('    slot router "… ops, … split"; cluster sink "applied … ops", growing as the writer writes');
  say('  - click the button of the "progress" debug node to see the whole progress object in the debug sidebar (bug icon)');
  say('  - click "stop" / "start": the source stops, then resumes from where it stopped (a partial resync, no new copy)');
  say('  - the destination: keys of source db N are in db 0 with the prefix "dbN:"');
  say(`      redis-cli -p ${sourcePort} GET counter:visits`);
  say(`      redis-cli -c -p ${clusterPorts[0]} GET db0:counter:visits`);
  say(`      redis-cli -c -p ${clusterPorts[0]} XLEN db0:stream:orders`);
  say('  - every 10 s a "check" line below compares the source with the destination');
  say('  - the flow is wide: Ctrl-Space in the editor hides the sidebar');
  say();
  say(`  Node-RED's log: ${path.relative(process.cwd(), path.join(DEMO, 'node-red.log'))}.  ${bold('Ctrl-C')} stops everything and removes .demo/.`);
  say();

  const nodeRed = children.find((c) => c.name === 'Node-RED');
  nodeRed.done.then((code) => {
    if (!shuttingDown) {
      fail(`Node-RED exited (${code}); see the output above.`);
      void shutdown('Node-RED exited', 1);
    }
  });
}

main().catch((err) => {
  fail(err.message);
  void shutdown('error', 1);
});
