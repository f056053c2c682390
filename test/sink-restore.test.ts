import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from './harness';
import { DumpPayload } from '../lib/rdb/dump';
import type { CommandArg } from '../lib/resp/encoder';
import { restoreCommands } from '../lib/sink/restore';

const NOW = 1_800_000_000_000;
const payload = new DumpPayload(0, Buffer.from([3, 0x61, 0x62, 0x63]), 9); // the string "abc", RDB 9
const text = (cmds: CommandArg[][] | null): string[][] | null => cmds && cmds.map((c) => c.map((a) => (a === payload ? '<payload>' : String(a))));

describe('lib/sink restoreCommands: RESTORE as each destination version knows it', () => {
  const key = { key: Buffer.from('k'), expireMs: NOW + 5000, idleSeconds: 7, lfuFreq: null };

  it('5.0 and later: absolute TTL, REPLACE, IDLETIME or FREQ', () => {
    assert.deepEqual(text(restoreCommands(key, payload, true, [7, 0], NOW)), [['RESTORE', 'k', String(NOW + 5000), '<payload>', 'REPLACE', 'ABSTTL', 'IDLETIME', '7']]);
    assert.deepEqual(text(restoreCommands({ ...key, expireMs: null, idleSeconds: null, lfuFreq: 3 }, payload, false, [5, 0], NOW)), [['RESTORE', 'k', '0', '<payload>', 'FREQ', '3']]);
  });

  it('3.x and 4.x: relative TTL from now, no eviction hints; an expired key is left out', () => {
    assert.deepEqual(text(restoreCommands(key, payload, true, [4, 0], NOW)), [['RESTORE', 'k', '5000', '<payload>', 'REPLACE']]);
    assert.deepEqual(text(restoreCommands(key, payload, false, [3, 2], NOW)), [['RESTORE', 'k', '5000', '<payload>']]);
    assert.equal(restoreCommands({ ...key, expireMs: NOW - 1 }, payload, true, [4, 0], NOW), null);
  });

  it('2.8: no REPLACE, so a DEL goes first', () => {
    assert.deepEqual(text(restoreCommands({ ...key, expireMs: null }, payload, true, [2, 8], NOW)), [['DEL', 'k'], ['RESTORE', 'k', '0', '<payload>']]);
  });

  describe('against a live redis-server', () => {
    let server: RedisServer;
    before(async () => {
      server = await startRedis();
    });
    after(async () => {
      await server.stop();
    });

    for (const version of [[7, 0], [4, 0], [2, 8]] as Array<[number, number]>) {
      it(`the ${version.join('.')} form restores the value with its TTL`, async () => {
        const now = Date.now();
        const k = { key: Buffer.from(`k${version.join('')}`), expireMs: version[0] === 2 ? null : now + 60_000, idleSeconds: null, lfuFreq: null };
        const client = server.client();
        await client.set(k.key, 'old');
        for (const cmd of restoreCommands(k, payload, true, version, now) ?? []) {
          await client.call(String(cmd[0]), ...cmd.slice(1).map((a) => (a === payload ? dumpBytes() : (a as string | number | Buffer))));
        }
        assert.equal(await client.get(k.key), 'abc');
        const pttl = await client.pttl(k.key);
        if (k.expireMs === null) assert.equal(pttl, -1);
        else assert.ok(pttl > 55_000 && pttl <= 60_000, `PTTL ${pttl}`);
        client.disconnect();
      });
    }
  });
});

function dumpBytes(): Buffer {
  const out = Buffer.alloc(payload.byteLength);
  payload.writeTo(out, 0);
  return out;
}
