/**
 * `redis-sync verify` against real servers: the report as JSON on standard output, exit 0
 * when equal, 1 when not, 2 on an error; redis:// and cluster:// URLs, the password in the
 * URL or from the environment, the options.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { VerifyReport } from '../lib/verify';
import { TestServers } from './support/servers';
import { fillAllTypes } from './support/workload';

const BIN = resolve(__dirname, '..', 'bin', 'redis-sync.ts');

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; report: VerifyReport | null; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', BIN, 'verify', ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, report: stdout.trim() === '' ? null : (JSON.parse(stdout) as VerifyReport), stderr });
    });
  });
}

describe('redis-sync verify', function () {
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  it('prints the report and exits 0 for an equal destination, 1 once a key differs', async () => {
    const src = await servers.server();
    const dst = await servers.server();
    for (const s of [src, dst]) for (let i = 0; i < 20; i++) await s.command('SET', `k${i}`, `v${i}`);
    const equal = await run([`redis://${src.host}:${src.port}`, `redis://${dst.host}:${dst.port}`, '--rounds', '1']);
    assert.equal(equal.code, 0, equal.stderr);
    assert.deepEqual([equal.report?.equal, equal.report?.compared], [true, 20]);
    assert.equal(equal.stderr, '', 'no progress line when standard error is no terminal');
    await dst.command('DEL', 'k3');
    await dst.command('SET', 'stray', 'x');
    const differ = await run([`redis://${src.host}:${src.port}`, `redis://${dst.host}:${dst.port}`, '--rounds', '2', '--round-delay', '10', '--extra']);
    assert.equal(differ.code, 1);
    assert.deepEqual([differ.report?.missing, differ.report?.extra, differ.report?.rounds], [1, 1, 2]);
  });

  it('takes --dbs, --match, --sample and --ttl-tolerance', async () => {
    const src = await servers.server();
    const dst = await servers.server();
    const a = src.client();
    const b = dst.client();
    const at = Date.now() + 100_000;
    for (const c of [a, b]) {
      await c.select(2);
      for (let i = 0; i < 20; i++) await c.set(`user:${i}`, 'u');
      await c.set('other', 'o');
    }
    await a.pexpireat('user:1', at);
    await b.pexpireat('user:1', at + 3000);
    await a.select(0);
    await a.set('only-in-db0', 'x');
    a.disconnect();
    b.disconnect();
    const urls = [`redis://${src.host}:${src.port}`, `redis://${dst.host}:${dst.port}`];
    const tolerant = await run([...urls, '--dbs', '2', '--match', 'user:*', '--ttl-tolerance', '5000', '--rounds', '1']);
    assert.equal(tolerant.code, 0, tolerant.stderr);
    assert.equal(tolerant.report?.compared, 20);
    const strict = await run([...urls, '--dbs', '2', '--rounds', '1']);
    assert.equal(strict.code, 1);
    assert.deepEqual(strict.report?.samples.map((s) => [s.db, s.key, s.reason]), [[2, 'user:1', 'ttl']]);
    const sample = await run([...urls, '--dbs', '2', '--sample', '5', '--rounds', '1', '--ttl-tolerance', '5000']);
    assert.equal(sample.report?.compared, 5);
  });

  it('reads a cluster:// source, with the password from the URL or the environment', async () => {
    const cluster = await servers.cluster({ replicas: 0, config: { requirepass: 'secret' } });
    const dst = await servers.server({ config: { requirepass: 'other' } });
    const c = cluster.client();
    await fillAllTypes(c, 'k:', 5);
    c.disconnect();
    // the destination gets the same keys, copied with DUMP/RESTORE
    const d = dst.client();
    for (const m of await cluster.masters()) {
      const mc = m.client();
      for (const k of (await mc.keys('*')) as string[]) await d.restore(k, Math.max(0, await mc.pttl(k)), (await mc.dumpBuffer(k)) as Buffer);
      mc.disconnect();
    }
    d.disconnect();
    const seeds = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
    const fromUrl = await run([`cluster://:secret@${seeds}`, `redis://:other@${dst.host}:${dst.port}`, '--rounds', '1']);
    assert.equal(fromUrl.code, 0, fromUrl.stderr);
    assert.ok((fromUrl.report?.compared ?? 0) > 40);
    const fromEnv = await run([`cluster://${seeds}`, `redis://${dst.host}:${dst.port}`, '--rounds', '1'], { REDIS_SYNC_SOURCE_PASSWORD: 'secret', REDIS_SYNC_DESTINATION_PASSWORD: 'other' });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const wrong = await run([`cluster://${seeds}`, `redis://${dst.host}:${dst.port}`], { REDIS_SYNC_SOURCE_PASSWORD: 'nope' });
    assert.equal(wrong.code, 2);
    assert.equal(wrong.report, null);
    assert.match(wrong.stderr, /redis-sync verify: .*(WRONGPASS|invalid password|auth)/i);
  });

  it('exits 2 naming the problem for a bad option or URL', async () => {
    const bad = await run(['http://localhost:1', 'redis://localhost:2']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"http:\/\/localhost:1" is not redis:\/\//);
    const option = await run(['redis://localhost:1', 'redis://localhost:2', '--rate', 'fast']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /--rate: "fast" is not a number/);
  });

  it('exits 2 with one line naming the side for an unreachable server, or a cluster:// URL of a standalone server', async () => {
    const src = await servers.server();
    const dst = await servers.server();
    const deadPort = dst.port;
    await dst.stop();
    const unreachable = await run([`redis://${src.host}:${src.port}`, `redis://127.0.0.1:${deadPort}`]);
    assert.equal(unreachable.code, 2);
    assert.equal(unreachable.stderr, `redis-sync verify: the destination cannot be reached: 127.0.0.1:${deadPort}: connect ECONNREFUSED 127.0.0.1:${deadPort}\n`);
    const notCluster = await run([`cluster://${src.host}:${src.port}`, `redis://${src.host}:${src.port}`]);
    assert.equal(notCluster.code, 2);
    assert.equal(notCluster.report, null);
    assert.match(notCluster.stderr, new RegExp(`^redis-sync verify: the source is set up as a cluster, but ${src.host}:${src.port} is a standalone server .*redis://${src.host}:${src.port}\\n$`));
  });
});
