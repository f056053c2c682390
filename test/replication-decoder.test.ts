import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { Crc64 } from '../lib/rdb/crc64';
import { ReplicationDecoder } from '../lib/replication/decoder';
import { encodeCommand } from '../lib/resp/encoder';
import { listRdbFixtures } from './support/fixtures';

const str = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);

function rdbWith(body: Buffer, version = 8): Buffer {
  const withEof = Buffer.concat([Buffer.from(`REDIS000${version}`), body, Buffer.from([0xff])]);
  return Buffer.concat([withEof, new Crc64().update(withEof).digest()]);
}

function decode(rdb: Buffer, stream: Buffer[] = []): Operation[] {
  const d = new ReplicationDecoder({ shard: 's' });
  const ops: Operation[] = [];
  ops.push(...d.push({ kind: 'fullresync', replid: 'r'.repeat(40), offset: 100 }));
  ops.push(...d.push({ kind: 'rdb', data: rdb }));
  ops.push(...d.push({ kind: 'rdb-end', size: rdb.length }));
  for (const s of stream) ops.push(...d.push({ kind: 'stream', data: s }));
  return ops;
}

describe('replication decoder', () => {
  it('turns the Lua scripts Redis 4/5 keep in the RDB (AUX lua) into SCRIPT LOAD, so EVALSHA works on the destination', () => {
    const script = 'return redis.call("GET", KEYS[1])';
    const ops = decode(rdbWith(Buffer.concat([Buffer.from([0xfa]), str('lua'), str(script)])));
    const load = ops.find((o): o is CommandOp => o.kind === 'command');
    assert.equal(load?.name, 'SCRIPT');
    assert.deepEqual(load?.args.map(String), ['LOAD', script]);
    assert.equal(load?.offset, 100);
  });

  it('turns 7.0+ function libraries into FUNCTION LOAD REPLACE, before the keys', () => {
    const fx = listRdbFixtures().find((f) => f.release === 'redis-7.0.15' && f.name === 'all-types');
    assert.ok(fx);
    const ops = decode(readFileSync(fx.rdbPath));
    const loads = ops.filter((o): o is CommandOp => o.kind === 'command' && o.name === 'FUNCTION');
    assert.equal(loads.length, fx.expected.functions.length);
    assert.deepEqual(loads[0].args.slice(0, 2).map(String), ['LOAD', 'REPLACE']);
    assert.ok(ops.findIndex((o) => o.kind === 'command') < ops.findIndex((o) => o.kind === 'key'));
  });

  it('folds SELECT into db, drops PING and REPLCONF, keeps a command cut across chunks, and counts offsets exactly', () => {
    const cmds = [encodeCommand(['SELECT', '4']), encodeCommand(['PING']), encodeCommand(['SET', 'k', 'v']), encodeCommand(['REPLCONF', 'GETACK', '*']), encodeCommand(['INCR', 'n'])];
    const all = Buffer.concat(cmds);
    const cut = 40;
    const ops = decode(rdbWith(Buffer.alloc(0)), [all.subarray(0, cut), all.subarray(cut)]).filter((o): o is CommandOp => o.kind === 'command');
    assert.deepEqual(
      ops.map((o) => [o.name, o.db, o.offset]),
      [
        ['SET', 4, 100 + cmds[0].length + cmds[1].length + cmds[2].length],
        ['INCR', 4, 100 + all.length],
      ],
    );
  });

  it('names the keys of every command, whatever its case and argument count, and each operation owns its key list', () => {
    const stream = [
      ['set', 'a', '1'],
      ['SET', 'b', '2', 'EX', '10'],
      ['Del', 'c'],
      ['DEL', 'c', 'd', 'e'],
      ['MSET', 'k1', 'v1', 'k2', 'v2'],
      ['XGROUP', 'CREATE', 'stream', 'g', '$'],
      ['EVAL', 'return 1', '2', 'x', 'y', 'arg'],
      ['EVAL', 'return 1', '0'],
      ['ZUNIONSTORE', 'dst', '2', 'z1', 'z2'],
      ['SORT', 'list', 'BY', 'w_*', 'STORE', 'out'],
      ['NOTACOMMANDYET', 'x'],
      ['DEL', 'f'],
    ].map((argv) => encodeCommand(argv));
    const ops = decode(rdbWith(Buffer.alloc(0)), stream).filter((o): o is CommandOp => o.kind === 'command');
    const keysOf = (o: CommandOp): string[] => o.keys.map((i) => String(o.args[i]));
    assert.deepEqual(ops.map((o) => o.name), ['SET', 'SET', 'DEL', 'DEL', 'MSET', 'XGROUP', 'EVAL', 'EVAL', 'ZUNIONSTORE', 'SORT', 'NOTACOMMANDYET', 'DEL']);
    assert.deepEqual(ops.map(keysOf), [['a'], ['b'], ['c'], ['c', 'd', 'e'], ['k1', 'k2'], ['stream'], ['x', 'y'], [], ['dst', 'z1', 'z2'], ['list', 'out'], [], ['f']]);
    ops[2].keys.push(99);
    assert.deepEqual(ops[11].keys, [0], 'operations share a key list');
  });
});
