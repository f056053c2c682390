import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';

const execFileAsync = promisify(execFile);

/** False once the pid is gone or a zombie (an orphan's reaper may be slow or absent in a container). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // The state field follows the parenthesised command name, which may itself contain spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

function keyInSlot(slot: number): string {
  for (let i = 0; ; i++) if (calculateSlot(`key:${i}`) === slot) return `key:${i}`;
}

function clusterInfo(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split(/\r?\n/).map((l) => l.split(':') as [string, string]));
}

describe('test harness', () => {
  describe('startRedis', () => {
    it('starts a server with the config the test asks for', async () => {
      const server = await startRedis({
        config: { maxmemory: '10mb', 'client-output-buffer-limit': 'replica 32mb 8mb 10', requirepass: 'sekret' },
      });
      try {
        const client = server.client();
        assert.deepEqual(await client.config('GET', 'maxmemory'), ['maxmemory', '10485760']);
        const [, limits] = (await client.config('GET', 'client-output-buffer-limit')) as string[];
        assert.match(limits, /slave 33554432 8388608 10/);
        // the rest is the binary's stock configuration (Redis 7's defaults here)
        assert.deepEqual(await client.config('GET', 'save'), ['save', '3600 1 300 100 60 10000']);
        assert.deepEqual(await client.config('GET', 'repl-diskless-sync-delay'), ['repl-diskless-sync-delay', '5']);
        assert.equal((await server.cli('PING')).trim(), 'PONG');
        assert.equal(server.url, `redis://:sekret@127.0.0.1:${server.port}`);
        assert.match(server.readLog(), /Ready to accept connections/);
        assert.ok(server.dir.length > 0 && existsSync(path.join(server.dir, 'redis.conf')));
      } finally {
        await server.stop();
      }
    });

    it('runs two servers at once on different ports', async () => {
      const [a, b] = await Promise.all([startRedis(), startRedis()]);
      try {
        assert.notEqual(a.port, b.port);
        assert.notEqual(a.dir, b.dir);
        await a.client().set('k', 'a');
        await b.client().set('k', 'b');
        assert.equal(await a.client().get('k'), 'a');
        assert.equal(await b.client().get('k'), 'b');
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    it("rejects a failed startup with the server's own complaint and cleans up", async () => {
      const err = await startRedis({ config: { 'no-such-option': 'x' } }).then(
        () => assert.fail('startRedis resolved'),
        (e: Error) => e,
      );
      assert.match(err.message, /Bad directive or wrong number of arguments/);
      assert.match(err.message, /no-such-option/);
      const logFile = /tail of (\S+)/.exec(err.message)?.[1];
      assert.ok(logFile !== undefined && !existsSync(path.dirname(logFile)), 'temp dir removed');
    });

    it('stop() leaves no process and no directory behind, also after a crash or a hang', async () => {
      const [clean, crashed, hung] = await Promise.all([startRedis(), startRedis(), startRedis({ stopTimeoutMs: 300 })]);
      const client = clean.client();
      await client.ping();

      crashed.kill('SIGKILL');
      assert.ok(await crashed.waitForExit(3000));
      // SIGSTOP: SHUTDOWN gets no answer, so stop() must fall back to SIGKILL.
      hung.kill('SIGSTOP');

      await Promise.all([clean.stop(), crashed.stop(), hung.stop()]);
      for (const server of [clean, crashed, hung]) {
        assert.ok(!isRunning(server.pid), `pid ${server.pid} still runs`);
        assert.ok(!existsSync(server.dir), `${server.dir} still exists`);
      }
      assert.equal(client.status, 'end');
      await clean.stop(); // idempotent
    });

    it('kills servers left running when the process exits', async () => {
      const script = `require(${JSON.stringify(path.join(__dirname, 'harness', 'redis'))}).startRedis()
        .then((s) => { console.log(JSON.stringify({ pid: s.pid, dir: s.dir })); process.exit(0); });`;
      const { stdout } = await execFileAsync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
        cwd: path.join(__dirname, '..'),
      });
      const { pid, dir } = JSON.parse(stdout) as { pid: number; dir: string };
      assert.ok(await waitGone(pid), `orphaned redis-server ${pid} survived`);
      assert.ok(!existsSync(dir));
    });
  });

  describe('startCluster', () => {
    let cluster: RedisCluster;

    before(async () => {
      cluster = await startCluster({ masters: 3, replicas: 1 });
    });

    after(async () => {
      await cluster?.stop();
    });

    it('reaches cluster_state:ok with 3 masters and linked replicas', async () => {
      assert.equal(cluster.nodes.length, 6);
      assert.equal(cluster.seeds.length, 6);
      for (const node of cluster.nodes) {
        assert.equal(clusterInfo(await node.cli('CLUSTER', 'INFO')).cluster_state, 'ok');
      }
      const masters = await cluster.masters();
      const replicas = await cluster.replicas();
      assert.equal(masters.length, 3);
      assert.equal(replicas.length, 3);
      for (const master of masters) assert.equal((await cluster.replicasOf(master)).length, 1);
      for (const replica of replicas) assert.match(await replica.cli('INFO', 'replication'), /master_link_status:up/);
    });

    it('routes a key written through the Cluster client to the master owning its slot', async () => {
      const client = cluster.client();
      const keys = ['foo', 'bar', 'baz', '{user:1}:name'];
      for (const key of keys) await client.set(key, `v-${key}`);
      const owners = new Set<RedisServer>();
      for (const key of keys) {
        const master = await cluster.masterForSlot(calculateSlot(key));
        assert.ok(master !== undefined);
        owners.add(master);
        // A plain connection: the master answers only for its own slots, so this proves placement.
        assert.equal(await master.client().get(key), `v-${key}`);
      }
      assert.ok(owners.size > 1, 'the keys spread over several masters');
    });

    it('fails over a replica and waits until it is master', async () => {
      const client = cluster.client();
      await client.set('foo', 'v-foo');
      const slot = calculateSlot('foo');
      const oldMaster = await cluster.masterForSlot(slot);
      assert.ok(oldMaster !== undefined);
      const [replica] = await cluster.replicasOf(oldMaster);

      await cluster.failover(replica);

      assert.equal(await cluster.masterForSlot(slot), replica);
      assert.equal(((await replica.command('ROLE')) as string[])[0], 'master');
      assert.deepEqual(await cluster.replicasOf(replica), [oldMaster]);
      assert.equal(await client.get('foo'), 'v-foo');
    });
  });

  it('builds a cluster with a custom slot layout that leaves slots unassigned', async () => {
    const cluster = await startCluster({ slots: [[[0, 100], [200, 8191]], [[8192, 16383]]], replicas: 1 });
    try {
      const [first, second] = cluster.nodes;
      assert.equal(await cluster.masterForSlot(0), first);
      assert.equal(await cluster.masterForSlot(8192), second);
      assert.equal(await cluster.masterForSlot(150), undefined);
      assert.equal((await cluster.replicas()).length, 2);

      const info = clusterInfo(await first.cli('CLUSTER', 'INFO'));
      assert.equal(info.cluster_slots_assigned, String(16384 - 99));
      // Full coverage is not required, so the assigned slots keep serving.
      assert.equal(info.cluster_state, 'ok');
      await assert.rejects(first.cli('--cluster', 'check', `${first.host}:${first.port}`), /Not all 16384 slots are covered/);
      await assert.rejects(first.client().set(keyInSlot(150), 'x'), /CLUSTERDOWN Hash slot not served/);
    } finally {
      await cluster.stop();
    }
  });
});
