/**
 * The writer against destinations that evict (lib/sink/eviction.ts): the maxmemory-policy read
 * where CONFIG is refused, what cannot be checked said rather than refused, evictions and
 * expiries counted from the start, a cluster's masters each checked.
 */
import assert from 'node:assert/strict';
import type { CommandOp } from '../lib/ops/operation';
import { SinkError } from '../lib/sink/errors';
import { EVICTION_CHECK_MS } from '../lib/sink/eviction';
import { DestinationWriter, type WriterOptions } from '../lib/sink/writer';
import { TestServers } from './support/servers';
import { until } from './support/wait';

let offset = 1;
const SOURCE = { source: 'eviction-test' };

function command(name: string, ...args: string[]): CommandOp {
  return { kind: 'command', db: 0, name, args: args.map((a) => Buffer.from(a)), keys: [0], shard: 'standalone', offset: offset++, tx: 0 };
}

describe('lib/sink DestinationWriter: evicting destinations', function () {
  this.timeout(60_000);
  const servers = new TestServers();
  const writers: DestinationWriter[] = [];
  afterEach(async () => {
    for (const w of writers.splice(0)) w.close();
    await servers.stopAll();
  });

  /** A writer to 127.0.0.1:port, as `user` when given (password "pw"). */
  function writer(port: number, opts: Partial<WriterOptions> = {}, user?: string): DestinationWriter {
    const w = new DestinationWriter({ ...opts, endpoint: { mode: 'standalone', host: '127.0.0.1', port, ...(user === undefined ? {} : { username: user, password: 'pw' }) } });
    writers.push(w);
    return w;
  }

  it('accepts an evicting policy without maxmemory, which never evicts (Redis 2.8 and 3.0 ship volatile-lru with maxmemory 0)', async () => {
    const dst = await servers.server({ config: { 'maxmemory-policy': 'volatile-lru' } });
    const w = writer(dst.port);
    await w.connect();
    await w.apply([command('SET', 'a', '1')], SOURCE);
    assert.equal(await dst.command('GET', 'a'), '1');
  });

  it('reads the policy from INFO memory where CONFIG is refused, and still refuses an evicting one', async () => {
    const dst = await servers.server({ config: { maxmemory: '1gb', 'maxmemory-policy': 'allkeys-lru' } });
    await dst.command('ACL', 'SETUSER', 'noconfig', 'on', '>pw', '~*', '+@all', '-config');
    const w = writer(dst.port, {}, 'noconfig');
    await assert.rejects(w.connect(), (e: unknown) => e instanceof SinkError && e.code === 'EVICTION' && e.permanent && /has maxmemory-policy allkeys-lru/.test(e.message));
  });

  it('says what it cannot check (no CONFIG, no INFO) and goes on, rather than refuse', async () => {
    const dst = await servers.server({ config: { maxmemory: '1gb', 'maxmemory-policy': 'allkeys-lru' } });
    await dst.command('ACL', 'SETUSER', 'blind', 'on', '>pw', '~*', '+@all', '-config', '-info');
    const unchecked: string[] = [];
    const w = writer(dst.port, { onEvictionUnchecked: (what) => unchecked.push(what) }, 'blind');
    await w.connect();
    await w.apply([command('SET', 'a', '1')], SOURCE);
    assert.equal(unchecked.length, 2, unchecked.join('\n'));
    assert.match(unchecked[0], new RegExp(`destination 127\\.0\\.0\\.1:${dst.port}: its maxmemory-policy could not be read`));
    assert.match(unchecked[1], /INFO stats is refused, so evictions there cannot be watched/);
  });

  it('allowed, counts the keys evicted and expired since it started, and tells each time more were evicted', async () => {
    const dst = await servers.server({ config: { maxmemory: '2mb', 'maxmemory-policy': 'allkeys-random' } });
    await dst.command('SET', 'expired-before', 'x', 'PX', '1');
    await until(async () => Number(/expired_keys:(\d+)/.exec(String(await dst.command('INFO', 'stats')))?.[1]) >= 1, 'the key from before to expire');
    const reports: number[] = [];
    const w = writer(dst.port, { allowEviction: true, onEvicted: (n) => reports.push(n) });
    await w.connect();
    await w.apply([command('SET', 'short', 'x', 'PX', '50')], SOURCE);
    await until(() => w.stats.expiredKeys === 1, 'the expiry counted', 2 * EVICTION_CHECK_MS + 1000);
    assert.deepEqual(reports, [], 'an expiry is no eviction');
    const value = 'v'.repeat(1000);
    for (let b = 0; b < 5; b++) await w.apply(Array.from({ length: 1000 }, (_, i) => command('SET', `big:${b}:${i}`, value)), SOURCE);
    await until(() => reports.length > 0, 'an eviction report', 2 * EVICTION_CHECK_MS + 1000);
    const info = String(await dst.command('INFO', 'stats'));
    const evicted = Number(/evicted_keys:(\d+)/.exec(info)?.[1]);
    assert.ok(evicted > 0 && (reports.at(-1) ?? 0) <= evicted && w.stats.evictedKeys <= evicted, `${reports.join(',')} of ${evicted}`);
    assert.equal(w.stats.expiredKeys, 1, 'only the one expired since the start');
    assert.deepEqual(reports, [...reports].sort((a, b) => a - b), 'told as the count grows');
  });

  it('checks every master of a cluster destination', async () => {
    const cluster = await servers.cluster({ masters: 3 });
    const third = cluster.nodes[2]; // the intended masters come first
    await third.command('CONFIG', 'SET', 'maxmemory', '1gb');
    await third.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-ttl');
    const w = new DestinationWriter({ endpoint: { mode: 'cluster', seeds: [{ host: '127.0.0.1', port: cluster.nodes[0].port }] } });
    writers.push(w);
    await assert.rejects(w.connect(), (e: unknown) => e instanceof SinkError && e.code === 'EVICTION' && e.message.includes(`127.0.0.1:${third.port} has maxmemory-policy volatile-ttl: it evicts keys that have a TTL`));
  });
});
