import assert from 'node:assert/strict';
import { slotOf } from '../lib/cluster/slots';
import type { CommandOp } from '../lib/ops/operation';
import { Destination } from '../lib/sink/destination';
import { DestinationWriter } from '../lib/sink/writer';
import { TestServers } from './support/servers';
import { redisBuild, requireBuilds } from './support/versions';

let offset = 1;

function set(key: string, value: string): CommandOp {
  return { kind: 'command', db: 0, name: 'SET', args: [Buffer.from(key), Buffer.from(value)], keys: [0], shard: 'standalone', offset: offset++, tx: 0 };
}

describe('lib/sink Destination: a 3.2 cluster destination', function () {
  before(function () {
    requireBuilds(this, ['3.2.13']);
  });
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  it('learns which master serves each slot from CLUSTER SLOTS, and a writer fed without a slot router writes keys of every master', async () => {
    const build = redisBuild('3.2.13');
    if (typeof build === 'string') throw new Error(build);
    // redis-cli --cluster came with 5.0: the harness builds an older cluster by hand, from its slot ranges
    const thirds: Array<Array<[number, number]>> = [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]];
    const cluster = await servers.cluster({ binary: build.server, cliBinary: build.cli, replicas: 0, slots: thirds });
    const endpoint = { mode: 'cluster' as const, seeds: cluster.seeds };

    const dest = new Destination({ endpoint }, { redirects: 0, asks: 0 });
    try {
      await dest.connect();
      assert.equal(dest.cluster, true);
      assert.deepEqual(dest.version, [3, 2]);
      assert.equal(dest.masters.length, 3);
      for (const [[from, to]] of thirds) {
        const owner = (await cluster.masterForSlot(from))?.port;
        assert.equal(dest.nodeFor(from).name.split(':').pop(), String(owner), `slot ${from}`);
        assert.equal(dest.nodeFor(to), dest.nodeFor(from), `slot ${to}`);
      }
    } finally {
      dest.close();
    }

    const writer = new DestinationWriter({ endpoint });
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => `key:${k}`);
    assert.equal(new Set(keys.map((k) => Math.floor(slotOf(k) / 5461))).size, 3, 'the keys span the three masters');
    try {
      await writer.connect();
      await writer.apply(
        keys.map((k) => set(k, `v-${k}`)),
        { source: 'destination-test' },
      );
    } finally {
      writer.close();
    }
    const client = cluster.client();
    try {
      for (const k of keys) assert.equal(await client.get(k), `v-${k}`, k);
    } finally {
      client.disconnect();
    }
  });
});
