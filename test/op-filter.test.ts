import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { list as tableCommands, hasFlag } from '@ioredis/commands';
import type Redis from 'ioredis';
import { COMMUNITY_COMMANDS, ENHANCED_COMMANDS } from '../lib/ops/command-sets';
import { ALL_WRITE_COMMANDS, keysOf } from '../lib/ops/commands';
import { FilterError, OpFilter } from '../lib/ops/filter';
import { readFilterSettings, validateFilterConfig, type OpFilterConfig } from '../lib/ops/filter-config';
import { compileGlob, globMatch } from '../lib/ops/glob';
import type { KeyPattern } from '../lib/ops/key-patterns';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { buildDumpPayload } from '../lib/rdb/dump';
import { ReplicaSource } from '../lib/replication/source';
import { startRedis, type RedisServer } from './harness';
import { until } from './support/wait';

type Arg = string | Buffer;
const buf = (a: Arg): Buffer => (Buffer.isBuffer(a) ? a : Buffer.from(a, 'latin1'));

/** A command as the decoder makes it: keys from the command table. */
function cmd(name: string, args: Arg[], o: { db?: number; tx?: number; keys?: number[]; offset?: number; shard?: string } = {}): CommandOp {
  const bufs = args.map(buf);
  return { kind: 'command', db: o.db ?? 0, name, args: bufs, keys: o.keys ?? keysOf(name, bufs), shard: o.shard ?? 'standalone', offset: o.offset ?? 100, tx: o.tx ?? 0 };
}

function keyOp(key: Arg, db = 0): KeyOp {
  return {
    kind: 'key', db, key: buf(key), type: 'string', value: null, raw: Buffer.from([0]), rdbType: 0, expireMs: null, idleSeconds: null,
    lfuFreq: null, chunk: null, offset: 0, shard: 'standalone', rdbVersion: 10,
  };
}

/** "db:NAME arg arg" for a command, "db:key name" for a key: what the tests compare. */
function show(op: Operation): string {
  if (op.kind === 'command') return [`${op.db}:${op.name}`, ...op.args.map((a) => a.toString('latin1'))].join(' ');
  if (op.kind === 'key') return `${op.db}:key ${op.key.toString('latin1')}`;
  return op.kind;
}

function run(cfg: OpFilterConfig, ops: Operation[]): { kept: string[]; dropped: string[] } {
  const r = new OpFilter(cfg).apply(ops);
  return { kept: r.kept.map(show), dropped: r.dropped.map(show) };
}

const noTmp: OpFilterConfig = { excludeKeys: [{ type: 'prefix', pattern: 'tmp:' }] };

describe('op filter: command presets', () => {
  // verbatim from the seed service's guide (shared/reference/000_*.txt)
  const community = `APPEND BITOP BLPOP BRPOP BRPOPLPUSH DECR DECRBY DEL EVAL EVALSHA EXEC EXPIRE EXPIREAT GEOADD GETSET HDEL HINCRBY
    HINCRBYFLOAT HMSET HSET HSETNX INCR INCRBY INCRBYFLOAT LINSERT LPOP LPUSH LPUSHX LREM LSET LTRIM MOVE MSET MSETNX MULTI PERSIST
    PEXPIRE PEXPIREAT PFADD PFMERGE PSETEX PUBLISH RENAME RENAMENX RESTORE RPOP RPOPLPUSH RPUSH RPUSHX SADD SDIFFSTORE SELECT SET
    SETBIT SETEX SETNX SETRANGE SINTERSTORE SMOVE SPOP SREM SUNIONSTORE ZADD ZINCRBY ZINTERSTORE ZREM ZREMRANGEBYLEX ZUNIONSTORE
    ZREMRANGEBYRANK ZREMRANGEBYSCORE SWAPDB UNLINK`.trim().split(/\s+/);
  const enhanced = community.filter((c) => c !== 'RESTORE' && c !== 'SWAPDB');

  it('Community and Enhanced hold exactly the seed service lists', () => {
    assert.equal(community.length, 72);
    assert.equal(enhanced.length, 70);
    assert.deepEqual([...COMMUNITY_COMMANDS].sort(), [...community].sort());
    assert.equal(new Set(COMMUNITY_COMMANDS).size, COMMUNITY_COMMANDS.length);
    assert.deepEqual([...ENHANCED_COMMANDS].sort(), [...enhanced].sort());
    assert.ok(ENHANCED_COMMANDS.includes('UNLINK') && !ENHANCED_COMMANDS.includes('RESTORE') && !ENHANCED_COMMANDS.includes('SWAPDB'));
  });

  it('a preset keeps its commands and drops the others', () => {
    for (const [preset, names] of [['community', community], ['enhanced', enhanced]] as const) {
      const f = new OpFilter({ preset });
      for (const name of names) assert.ok(f.commandAllowed(name), `${preset} keeps ${name}`);
      for (const name of ['COPY', 'LMOVE', 'XADD', 'FUNCTION', 'GETDEL', 'HSETEX', 'SPUBLISH', 'FOO.BAR']) assert.ok(!f.commandAllowed(name), `${preset} drops ${name}`);
    }
    assert.ok(!new OpFilter({ preset: 'enhanced' }).commandAllowed('RESTORE'));
    assert.ok(!new OpFilter({ preset: 'enhanced' }).commandAllowed('SWAPDB'));
    const r = run({ preset: 'enhanced' }, [cmd('SET', ['a', '1']), cmd('RESTORE', ['b', '0', 'x']), cmd('XADD', ['s', '*', 'f', 'v']), keyOp('k')]);
    assert.deepEqual(r.kept, ['0:SET a 1', '0:key k'], 'snapshot keys are not commands: the lists do not apply to them');
    assert.deepEqual(r.dropped, ['0:RESTORE b 0 x', '0:XADD s * f v']);
  });

  it('"all" keeps every write of the command table, what a master replicates unflagged, and unknown commands', () => {
    const f = new OpFilter();
    for (const name of tableCommands) {
      const writes = hasFlag(name, 'write');
      if (writes) assert.ok(f.commandAllowed(name.toUpperCase()), name);
    }
    for (const name of ['PUBLISH', 'SPUBLISH', 'PFCOUNT', 'EVAL', 'EVALSHA', 'FCALL', 'SCRIPT', 'FUNCTION', 'XGROUP', 'SELECT', 'SWAPDB', 'FLUSHALL']) {
      assert.ok(ALL_WRITE_COMMANDS.has(name), name);
    }
    for (const name of ['GET', 'HGETALL', 'PING', 'INFO', 'EVAL_RO', 'XREAD']) assert.ok(!f.commandAllowed(name), `a read: ${name}`);
    assert.ok(f.commandAllowed('JSON.SET'), 'a module command the table does not know');
    assert.ok(f.commandAllowed('SOMEFUTURECOMMAND'));
  });

  it('allow adds to a preset, deny removes, names in any case', () => {
    const f = new OpFilter({ preset: 'community', allow: ['copy', 'Xadd'], deny: ['publish', 'DEL'] });
    assert.ok(f.commandAllowed('COPY') && f.commandAllowed('XADD') && f.commandAllowed('SET'));
    assert.ok(!f.commandAllowed('PUBLISH') && !f.commandAllowed('DEL'));
    const none = new OpFilter({ preset: 'none', allow: ['set'] });
    assert.ok(none.commandAllowed('SET') && !none.commandAllowed('DEL') && !none.commandAllowed('FOO'));
    const all = new OpFilter({ deny: ['xadd'] });
    assert.ok(!all.commandAllowed('XADD') && all.commandAllowed('SET'));
  });
});

describe('op filter: key patterns', () => {
  const g = (pattern: Arg, key: Arg): boolean => globMatch(compileGlob(buf(pattern)), buf(key));

  it('globs: * ? sets, ranges, negation, escapes', () => {
    assert.ok(g('h?llo', 'hello') && g('h?llo', 'hallo') && !g('h?llo', 'hllo'));
    assert.ok(g('h*llo', 'hllo') && g('h*llo', 'heeeello') && !g('h*llo', 'hellox'));
    assert.ok(g('h[ae]llo', 'hallo') && !g('h[ae]llo', 'hillo'));
    assert.ok(g('h[^e]llo', 'hallo') && !g('h[^e]llo', 'hello'));
    assert.ok(g('h[a-b]llo', 'hbllo') && g('h[b-a]llo', 'hbllo') && !g('h[a-b]llo', 'hcllo'));
    assert.ok(g('h\\*llo', 'h*llo') && !g('h\\*llo', 'hxllo'));
    assert.ok(g('[\\]]', ']') && g('a\\', 'a\\'), 'escaped ] in a set; a trailing backslash is literal');
    assert.ok(g('*', '') && g('**', 'x') && !g('?', '') && g('', '') && !g('', 'a'));
    assert.ok(g('*a*b*c', 'xxaxxbxxbxc') && !g('*a*b*c', 'xxaxxbxxbx'));
  });

  it('globs are binary-safe: any byte, in the key and in the pattern', () => {
    const key = Buffer.from([0x00, 0xff, 0x0a, 0x2a, 0x80]);
    assert.ok(g(Buffer.from([0x00, 0x2a]), key));
    assert.ok(g(Buffer.from([0x3f, 0xff, 0x3f, 0x5c, 0x2a, 0x2a]), key), '? byte 0xff ? \\* *');
    assert.ok(g(Buffer.from([0x2a, 0x5b, 0x7f, 0x2d, 0xff, 0x5d]), key), 'a range over high bytes');
    assert.ok(!g(Buffer.from([0x2a, 0x5b, 0x5e, 0x00, 0x2d, 0xff, 0x5d, 0x2a]), key), 'a negated set of every byte');
    assert.ok(g('caf\u00c3\u00a9*', 'caf\u00c3\u00a9s'), 'UTF-8 bytes');
  });

  it('globs match exactly what Redis KEYS matches, corner cases included', async function () {
    this.timeout(30_000);
    const server = await startRedis();
    try {
      const c = server.client();
      const keys = [
        'hello', 'hallo', 'hxllo', 'hllo', 'heeeello', 'h*llo', 'h?llo', 'h[a]llo', 'h\\llo', 'a-b', 'a]b', 'a^b', 'a\\b', '^', ']', '[', '\\', '-',
        'user:1', 'user:10', 'user:', 'x\ny', 'caf\u00c3\u00a9', '\u0000\u0001', '\u00ff\u00fe', 'ab', 'abc', 'b', 'a', '*', '?',
      ].map(buf);
      for (const k of keys) await c.set(k, '1');
      const patterns = [
        '*', 'h?llo', 'h*llo', 'h[ae]llo', 'h[^e]llo', 'h[a-b]llo', 'h[b-a]llo', 'h\\*llo', 'h\\?llo', 'h[\\]]llo', 'h[\\\\]llo', '[', '[]', '[]]', '[^]',
        '[a-]', 'a[]-]b', 'a[-]b', 'a[\\-]b', '\\', 'a\\', '[\\', '[^', '[a', 'a[b', 'user:?', 'user:*', 'user:[0-9]', 'user:[0-9]*', '*[\u0000-\u0001]*',
        '\u00ff*', 'x?y', '*\\', '**llo', '*a*b*', 'a[^]]b', 'a[\\^]b', '[]a]', '[a-c-e]', 'h[a-]llo', '?', '\\*', '[*]', 'caf?', 'caf??', '[^a-z]*',
      ].map(buf);
      for (const p of patterns) {
        const redis = ((await c.callBuffer('KEYS', p)) as Buffer[]).map((k) => k.toString('latin1')).sort();
        const glob = compileGlob(p);
        const ours = keys.filter((k) => globMatch(glob, k)).map((k) => k.toString('latin1')).sort();
        assert.deepEqual(ours, redis, `pattern ${JSON.stringify(p.toString('latin1'))}`);
        // the filter's fast paths (exact, prefix) agree with the general matcher
        const f = new OpFilter({ includeKeys: [{ type: 'glob', pattern: p.toString('latin1') }] });
        if (p.every((b) => b < 0x80)) assert.deepEqual(keys.filter((k) => f.keyKept(k)).map((k) => k.toString('latin1')).sort(), redis, `filter, pattern ${p.toString('latin1')}`);
      }
    } finally {
      await server.stop();
    }
  });

  it('prefix patterns compare bytes; regexes run on the latin1 key with "." matching any byte', () => {
    const f = (p: KeyPattern): OpFilter => new OpFilter({ includeKeys: [p] });
    assert.ok(f({ type: 'prefix', pattern: 'user:' }).keyKept(buf('user:1')));
    assert.ok(!f({ type: 'prefix', pattern: 'user:' }).keyKept(buf('user')));
    assert.ok(!f({ type: 'prefix', pattern: 'user:*' }).keyKept(buf('user:1')), 'a prefix is no glob');
    assert.ok(f({ type: 'prefix', pattern: 'café' }).keyKept(Buffer.from('café:1', 'utf8')));
    const re = f({ type: 'regex', pattern: '^s:[0-9]+$' });
    assert.ok(re.keyKept(buf('s:12')) && !re.keyKept(buf('s:1x')) && !re.keyKept(buf('xs:1')));
    assert.ok(f({ type: 'regex', pattern: '^\\xff\\x00' }).keyKept(Buffer.from([0xff, 0x00, 0x41])));
    assert.ok(f({ type: 'regex', pattern: '^a.b$' }).keyKept(buf('a\nb')), '. matches a newline byte');
    assert.ok(f({ type: 'regex', pattern: '^café$' }).keyKept(Buffer.from('café', 'utf8')), 'a literal stands for its UTF-8 bytes');
  });

  it('include and exclude: kept when matching any include (or none) and no exclude', () => {
    const f = new OpFilter({
      includeKeys: [{ type: 'prefix', pattern: 'a:' }, { type: 'glob', pattern: 'b:*:x' }],
      excludeKeys: [{ type: 'regex', pattern: ':tmp$' }, { type: 'glob', pattern: 'a:secret*' }],
    });
    const kept = ['a:1', 'a:tmp', 'a:secret', 'b:1:x', 'b:1:tmp', 'c:1', 'b:1:y'].filter((k) => f.keyKept(buf(k)));
    assert.deepEqual(kept, ['a:1', 'b:1:x']);
    assert.ok(new OpFilter(noTmp).keyKept(buf('x')) && !new OpFilter(noTmp).keyKept(buf('tmp:x')));
  });
});

describe('op filter: dbs', () => {
  it('include and exclude lists, for commands and snapshot keys', () => {
    const ops = [cmd('SET', ['a', '1'], { db: 0 }), cmd('SET', ['b', '1'], { db: 1 }), cmd('SET', ['c', '1'], { db: 2 }), keyOp('d', 1), keyOp('e', 2)];
    assert.deepEqual(run({ includeDbs: [1] }, ops).kept, ['1:SET b 1', '1:key d']);
    assert.deepEqual(run({ includeDbs: [1] }, ops).dropped, ['0:SET a 1', '2:SET c 1', '2:key e']);
    assert.deepEqual(run({ excludeDbs: [0] }, ops).kept, ['1:SET b 1', '2:SET c 1', '1:key d', '2:key e']);
  });

  it('remap, every db to 0, and the per-db key prefix on every key (values untouched)', () => {
    const ops = (): Operation[] => [
      cmd('SET', ['a', 'a'], { db: 0 }), cmd('MSET', ['k1', 'v1', 'k2', 'v2'], { db: 5 }), keyOp('d', 5), cmd('EVAL', ['return 1', '2', 'x', 'y', 'arg'], { db: 2 }),
      cmd('HSET', ['h', 'f', 'v'], { db: 7 }),
    ];
    assert.deepEqual(run({ remap: { 0: 3, 5: 0 } }, ops()).kept, ['3:SET a a', '0:MSET k1 v1 k2 v2', '0:key d', '2:EVAL return 1 2 x y arg', '7:HSET h f v']);
    assert.deepEqual(run({ allDbsToZero: true, keyPrefix: 'db{db}:' }, ops()).kept, [
      '0:SET db0:a a', '0:MSET db5:k1 v1 db5:k2 v2', '0:key db5:d', '0:EVAL return 1 2 db2:x db2:y arg', '0:HSET db7:h f v',
    ]);
    assert.deepEqual(run({ keyPrefix: 'src1:' }, ops()).kept[1], '5:MSET src1:k1 v1 src1:k2 v2', 'a constant prefix, dbs kept apart');
  });

  it('snapshot-begin and -end always pass', () => {
    const begin: Operation = { kind: 'snapshot-begin', shard: 's', replid: 'r', offset: 1 };
    const end: Operation = { kind: 'snapshot-end', shard: 's', replid: 'r', offset: 1, keys: 0, emptyKeysSkipped: 0 };
    const r = new OpFilter({ includeDbs: [9], includeKeys: [{ type: 'prefix', pattern: 'nothing' }], preset: 'none' }).apply([begin, keyOp('a'), end]);
    assert.deepEqual(r.kept, [begin, end]);
    assert.deepEqual(r.dropped.map(show), ['0:key a']);
  });

  it('PUBLISH, SPUBLISH, SCRIPT and FUNCTION are bound to no db and have no keys: neither filter applies', () => {
    const ops = [
      cmd('PUBLISH', ['tmp:ch', 'm'], { db: 4 }), cmd('SPUBLISH', ['tmp:ch', 'm'], { db: 4 }), cmd('FUNCTION', ['LOAD', 'REPLACE', 'code'], { db: 4 }),
      cmd('SCRIPT', ['LOAD', 'return 1'], { db: 4 }),
    ];
    const r = run({ ...noTmp, excludeDbs: [4], allDbsToZero: true, keyPrefix: 'db{db}:' }, ops);
    assert.deepEqual(r.kept, ['0:PUBLISH tmp:ch m', '0:SPUBLISH tmp:ch m', '0:FUNCTION LOAD REPLACE code', '0:SCRIPT LOAD return 1']);
  });

  it('MOVE: to an excluded db it becomes DEL; its db is remapped; joined dbs make it a RENAME between prefixes, or nothing', () => {
    assert.deepEqual(run({ excludeDbs: [2] }, [cmd('MOVE', ['k', '2'])]), { kept: ['0:DEL k'], dropped: ['0:MOVE k 2'] });
    assert.deepEqual(run({ excludeDbs: [0] }, [cmd('MOVE', ['k', '2'])]), { kept: [], dropped: ['0:MOVE k 2'] }, 'its data is in an excluded db');
    assert.deepEqual(run({ remap: { 0: 3, 2: 4 } }, [cmd('MOVE', ['k', '2'])]).kept, ['3:MOVE k 4']);
    assert.deepEqual(run({ allDbsToZero: true, keyPrefix: 'db{db}:' }, [cmd('MOVE', ['k', '2'], { db: 1 })]), { kept: ['0:RENAME db1:k db2:k'], dropped: ['1:MOVE k 2'] });
    assert.deepEqual(run({ allDbsToZero: true }, [cmd('MOVE', ['k', '2'], { db: 1 })]), { kept: [], dropped: ['1:MOVE k 2'] });
    assert.deepEqual(run(noTmp, [cmd('MOVE', ['tmp:k', '2'])]).dropped, ['0:MOVE tmp:k 2']);
  });

  it('COPY … DB: the target db must be kept; remapped, or folded into one db with each key its own prefix', () => {
    assert.deepEqual(run({ excludeDbs: [2] }, [cmd('COPY', ['a', 'b', 'DB', '2', 'REPLACE'])]).dropped, ['0:COPY a b DB 2 REPLACE']);
    assert.deepEqual(run({ remap: { 2: 6 } }, [cmd('COPY', ['a', 'b', 'DB', '2'])]).kept, ['0:COPY a b DB 6']);
    assert.deepEqual(run({ allDbsToZero: true, keyPrefix: 'db{db}:' }, [cmd('COPY', ['a', 'b', 'db', '2', 'REPLACE'], { db: 1 })]).kept, ['0:COPY db1:a db2:b REPLACE']);
    assert.deepEqual(run(noTmp, [cmd('COPY', ['a', 'tmp:b']), cmd('COPY', ['tmp:a', 'b'])]), { kept: ['0:COPY tmp:a b'], dropped: ['0:COPY a tmp:b'] });
  });

  it('SWAPDB: kept and remapped when both dbs are kept apart; dropped when it cannot be reproduced', () => {
    assert.deepEqual(run({ remap: { 0: 3 } }, [cmd('SWAPDB', ['0', '1'])]).kept, ['3:SWAPDB 3 1']);
    assert.deepEqual(run({ excludeDbs: [1] }, [cmd('SWAPDB', ['0', '1'])]).dropped, ['0:SWAPDB 0 1']);
    assert.deepEqual(run({ allDbsToZero: true }, [cmd('SWAPDB', ['0', '1'])]).dropped, ['0:SWAPDB 0 1']);
    assert.deepEqual(run({ remap: { 1: 0 } }, [cmd('SWAPDB', ['0', '1'])]).dropped, ['0:SWAPDB 0 1']);
    assert.deepEqual(run(noTmp, [cmd('SWAPDB', ['0', '1'])]).kept, ['0:SWAPDB 0 1'], 'no keys, so key patterns do not apply');
  });

  it('counts as lost, by name, and says once, what it drops although what it keeps changes: the destination then differs', () => {
    const told: string[] = [];
    const f = new OpFilter({ ...noTmp, excludeDbs: [5, 6], allDbsToZero: true, keyPrefix: 'db{db}:' }, (name, why) => told.push(`${name}: ${why}`));
    f.apply([
      cmd('SWAPDB', ['1', '2'], { offset: 7 }), // two prefixed dbs in one: every key of both would be renamed
      cmd('SWAPDB', ['0', '5']), // db 5 is filtered out: db 0 cannot take its keys
      cmd('MOVE', ['k', '0'], { db: 5 }), // a key arrives in db 0 from a db the destination has nothing of
      cmd('COPY', ['k', 'c', 'DB', '1'], { db: 5 }),
      cmd('RENAME', ['tmp:a', 'b']), // data arrives in a kept key from a dropped one
      cmd('SWAPDB', ['3', '0']),
    ]);
    assert.deepEqual(f.stats.lost, { SWAPDB: 3, MOVE: 1, COPY: 1, RENAME: 1 });
    assert.equal(told.length, 4, told.join('\n'));
    assert.match(told[0], /^SWAPDB: SWAPDB in db 0 at source offset 7 is dropped: dbs 1 and 2 both go into db 0, told apart by their key prefixes/);
    assert.match(told.find((t) => t.startsWith('MOVE')) ?? '', /MOVE in db 5 .* writes key "k" of db 0 from db 5, which is filtered out/);
    assert.match(told.find((t) => t.startsWith('RENAME')) ?? '', /from key "tmp:a", which the key patterns drop, into key "b", which they keep/);
    // nothing kept changes: not lost
    f.apply([
      cmd('SWAPDB', ['5', '6']), // both filtered out
      cmd('SWAPDB', ['3', '3']), // swaps nothing
      cmd('MOVE', ['k', '5']), // into a filtered-out db: a DEL, which is what the kept db saw
      cmd('MOVE', ['k', '6'], { db: 5 }),
      cmd('MOVE', ['tmp:k', '0'], { db: 5 }), // a key the patterns drop
      cmd('RENAME', ['tmp:a', 'tmp:b']),
    ]);
    assert.deepEqual(f.stats.lost, { SWAPDB: 3, MOVE: 1, COPY: 1, RENAME: 1 });
    const merged = new OpFilter({ allDbsToZero: true });
    merged.apply([cmd('SWAPDB', ['1', '2']), cmd('MOVE', ['k', '2'], { db: 1 })]);
    assert.deepEqual(merged.stats.lost, {}, 'dbs that share one keyspace: a swap or a move between them changes nothing there');
  });
});

describe('op filter: multi-key commands whose keys partly match (excluding tmp:*)', () => {
  it('DEL, UNLINK, TOUCH, EXISTS keep the matching keys; the dropped keys go out as a command of their own', () => {
    // TOUCH and EXISTS are reads ("all" drops them): a master does not replicate them, a function node might make them
    const cfg = { ...noTmp, allow: ['TOUCH', 'EXISTS'] };
    for (const name of ['DEL', 'UNLINK', 'TOUCH', 'EXISTS']) {
      const op = cmd(name, ['a', 'tmp:1', 'b', 'tmp:2']);
      const r = new OpFilter(cfg).apply([op]);
      assert.equal(r.kept[0], op, 'the same object, changed in place');
      assert.deepEqual(r.kept.map(show), [`0:${name} a b`]);
      assert.deepEqual((r.kept[0] as CommandOp).keys, [0, 1]);
      assert.deepEqual(r.dropped.map(show), [`0:${name} tmp:1 tmp:2`]);
      assert.deepEqual((r.dropped[0] as CommandOp).keys, [0, 1]);
      assert.deepEqual(run(cfg, [cmd(name, ['tmp:1', 'tmp:2'])]), { kept: [], dropped: [`0:${name} tmp:1 tmp:2`] });
    }
  });

  it('MSET and MSETNX keep the matching key/value pairs (MSETNX stays MSETNX)', () => {
    for (const name of ['MSET', 'MSETNX']) {
      const r = new OpFilter(noTmp).apply([cmd(name, ['a', '1', 'tmp:x', '2', 'b', '3'])]);
      assert.deepEqual(r.kept.map(show), [`0:${name} a 1 b 3`]);
      assert.deepEqual((r.kept[0] as CommandOp).keys, [0, 2]);
      assert.deepEqual(r.dropped.map(show), [`0:${name} tmp:x 2`]);
    }
  });

  it('RENAME, RENAMENX, SMOVE, LMOVE, BLMOVE, RPOPLPUSH, BRPOPLPUSH to a dropped key become the removal from the kept one', () => {
    const cases: Array<[CommandOp, string]> = [
      [cmd('RENAME', ['a', 'tmp:b']), '0:DEL a'],
      [cmd('RENAMENX', ['a', 'tmp:b']), '0:DEL a'],
      [cmd('SMOVE', ['s', 'tmp:s', 'm']), '0:SREM s m'],
      [cmd('LMOVE', ['l', 'tmp:l', 'LEFT', 'RIGHT']), '0:LPOP l'],
      [cmd('LMOVE', ['l', 'tmp:l', 'right', 'LEFT']), '0:RPOP l'],
      [cmd('BLMOVE', ['l', 'tmp:l', 'left', 'LEFT', '0']), '0:LPOP l'],
      [cmd('RPOPLPUSH', ['l', 'tmp:l']), '0:RPOP l'],
      [cmd('BRPOPLPUSH', ['l', 'tmp:l', '0']), '0:RPOP l'],
    ];
    for (const [op, expected] of cases) {
      const original = show(op);
      const r = new OpFilter(noTmp).apply([op]);
      assert.deepEqual(r.kept.map(show), [expected], original);
      assert.deepEqual((r.kept[0] as CommandOp).keys, [0]);
      assert.deepEqual(r.dropped.map(show), [original], 'the original goes to the dropped output');
    }
  });

  it('… from a dropped key they are dropped (the destination has not the data); both kept, kept whole', () => {
    for (const op of [cmd('RENAME', ['tmp:a', 'b']), cmd('SMOVE', ['tmp:s', 's', 'm']), cmd('LMOVE', ['tmp:l', 'l', 'LEFT', 'LEFT']), cmd('RPOPLPUSH', ['tmp:l', 'l'])]) {
      assert.deepEqual(run(noTmp, [op]), { kept: [], dropped: [show(op)] });
    }
    assert.deepEqual(run(noTmp, [cmd('RENAME', ['a', 'b'])]).kept, ['0:RENAME a b']);
  });

  it('store commands: kept whole when the destination key matches (sources are only read), dropped when not', () => {
    const stores: Array<[string, Arg[], Arg[]]> = [
      ['SUNIONSTORE', ['d', 's1', 'tmp:s2'], ['tmp:d', 's1']],
      ['SINTERSTORE', ['d', 'tmp:s1', 's2'], ['tmp:d', 's1']],
      ['SDIFFSTORE', ['d', 's1', 'tmp:s2'], ['tmp:d', 's1']],
      ['ZUNIONSTORE', ['d', '2', 'z1', 'tmp:z2', 'WEIGHTS', '1', '2'], ['tmp:d', '1', 'z1']],
      ['ZINTERSTORE', ['d', '2', 'tmp:z1', 'z2'], ['tmp:d', '1', 'z1']],
      ['ZDIFFSTORE', ['d', '2', 'z1', 'tmp:z2'], ['tmp:d', '1', 'z1']],
      ['ZRANGESTORE', ['d', 'tmp:z', '0', '-1'], ['tmp:d', 'z', '0', '-1']],
      ['BITOP', ['AND', 'd', 'a', 'tmp:b'], ['OR', 'tmp:d', 'a']],
      ['PFMERGE', ['d', 'tmp:h'], ['tmp:d', 'h']],
      ['GEOSEARCHSTORE', ['d', 'tmp:g', 'FROMLONLAT', '1', '2', 'BYRADIUS', '1', 'km'], ['tmp:d', 'g', 'FROMLONLAT', '1', '2', 'BYRADIUS', '1', 'km']],
      ['GEORADIUS', ['tmp:g', '15', '37', '200', 'km', 'STORE', 'd'], ['g', '15', '37', '200', 'km', 'STORE', 'tmp:d']],
      ['GEORADIUSBYMEMBER', ['tmp:g', 'm', '200', 'km', 'STOREDIST', 'd'], ['g', 'm', '200', 'km', 'STORE', 'tmp:d']],
      ['SORT', ['tmp:l', 'BY', 'w_*', 'LIMIT', '0', '5', 'GET', '#', 'ALPHA', 'STORE', 'd'], ['l', 'STORE', 'tmp:d']],
      ['COPY', ['tmp:a', 'd'], ['a', 'tmp:d']],
    ];
    for (const [name, keepArgs, dropArgs] of stores) {
      const keep = cmd(name, keepArgs);
      const drop = cmd(name, dropArgs);
      assert.deepEqual(run(noTmp, [keep, drop]), { kept: [show(keep)], dropped: [show(drop)] }, name);
    }
  });

  it('SORT … STORE with a key prefix: its keys (sorted, STORE) and its BY and GET patterns get it, once each', () => {
    const op = cmd('SORT', ['l', 'BY', 'w_*', 'GET', '#', 'GET', 'o_*->f', 'STORE', 'd']);
    const r = new OpFilter({ allDbsToZero: true, keyPrefix: 'db{db}:' }).apply([op]);
    assert.deepEqual(r.kept.map(show), ['0:SORT db0:l BY db0:w_* GET # GET db0:o_*->f STORE db0:d']);
    assert.deepEqual(op.keys, [0, 8]);
  });

  it('scripts (and multi-key commands without a rule) are kept whole when one key matches', () => {
    assert.deepEqual(run(noTmp, [cmd('EVAL', ['s', '2', 'tmp:a', 'b']), cmd('EVALSHA', ['x', '2', 'tmp:a', 'tmp:b']), cmd('FCALL', ['f', '0'])]), {
      kept: ['0:EVAL s 2 tmp:a b', '0:FCALL f 0'],
      dropped: ['0:EVALSHA x 2 tmp:a tmp:b'],
    });
    assert.deepEqual(run(noTmp, [cmd('NEWMULTI', ['tmp:a', 'b'], { keys: [0, 1] })]).kept, ['0:NEWMULTI tmp:a b']);
  });

  it('single-key and keyless commands', () => {
    assert.deepEqual(run(noTmp, [cmd('SET', ['tmp:a', '1']), cmd('SET', ['a', 'tmp:1']), cmd('XGROUP', ['CREATE', 'tmp:s', 'g', '0']), cmd('FLUSHDB', [])]), {
      kept: ['0:SET a tmp:1', '0:FLUSHDB'],
      dropped: ['0:SET tmp:a 1', '0:XGROUP CREATE tmp:s g 0'],
    });
  });
});

describe('op filter: transactions', () => {
  const tx = (n: number, db = 0): { tx: number; db: number } => ({ tx: n, db });

  it('MULTI/EXEC go with the transaction when a command of it is kept, and are dropped with it when none is', () => {
    const ops = [
      cmd('MULTI', [], tx(1)), cmd('SET', ['tmp:a', '1'], tx(1)), cmd('INCR', ['tmp:b'], tx(1)), cmd('EXEC', [], tx(1)),
      cmd('SET', ['x', '1']),
      cmd('MULTI', [], tx(2)), cmd('SET', ['tmp:a', '1'], tx(2)), cmd('DEL', ['tmp:z', 'y'], tx(2)), cmd('EXEC', [], tx(2)),
    ];
    assert.deepEqual(run(noTmp, ops), {
      kept: ['0:SET x 1', '0:MULTI', '0:DEL y', '0:EXEC'],
      dropped: ['0:MULTI', '0:SET tmp:a 1', '0:INCR tmp:b', '0:EXEC', '0:SET tmp:a 1', '0:DEL tmp:z'],
    });
  });

  it('the command lists and db filter empty a transaction the same way', () => {
    const ops = [cmd('MULTI', [], tx(1, 2)), cmd('XADD', ['s', '*', 'f', 'v'], tx(1, 2)), cmd('EXEC', [], tx(1, 2))];
    assert.deepEqual(run({ preset: 'community' }, ops).kept, []);
    assert.deepEqual(run({ excludeDbs: [2] }, ops).kept, []);
    assert.deepEqual(run({}, ops).kept.length, 3);
  });

  it('MULTI and EXEC take the db of the kept commands (the MULTI’s own db may be excluded)', () => {
    // a MULTI issued in db 1, then SELECT 0 inside the transaction
    const ops = [cmd('MULTI', [], tx(1, 1)), cmd('SET', ['a', '1'], tx(1, 1)), cmd('SET', ['b', '1'], tx(1, 0)), cmd('EXEC', [], tx(1, 0))];
    assert.deepEqual(run({ excludeDbs: [1], remap: { 0: 5 } }, ops).kept, ['5:MULTI', '5:SET b 1', '5:EXEC']);
  });

  it('a transaction split over two batches (a function node may split them): its MULTI goes out, and so does its EXEC', () => {
    const f = new OpFilter(noTmp);
    const first = f.apply([cmd('SET', ['a', '1']), cmd('MULTI', [], tx(7)), cmd('SET', ['tmp:a', '1'], tx(7))]);
    assert.deepEqual(first.kept.map(show), ['0:SET a 1', '0:MULTI']);
    const second = f.apply([cmd('SET', ['tmp:b', '1'], tx(7)), cmd('EXEC', [], tx(7))]);
    assert.deepEqual(second.kept.map(show), ['0:EXEC']);
  });

  it('an EXEC whose MULTI never came through is dropped; transactions of two shards interleave', () => {
    assert.deepEqual(run({}, [cmd('EXEC', [], tx(3))]).dropped, ['0:EXEC']);
    const a = { shard: 'slots:0-8191' };
    const b = { shard: 'slots:8192-16383' };
    const ops = [
      cmd('MULTI', [], { ...tx(1), ...a }), cmd('MULTI', [], { ...tx(1), ...b }), cmd('SET', ['k', '1'], { ...tx(1), ...b }), cmd('SET', ['tmp:k', '1'], { ...tx(1), ...a }),
      cmd('EXEC', [], { ...tx(1), ...a }), cmd('EXEC', [], { ...tx(1), ...b }),
    ];
    const r = new OpFilter(noTmp).apply(ops);
    assert.deepEqual(r.kept, [ops[1], ops[2], ops[5]]);
    assert.deepEqual(r.dropped, [ops[0], ops[3], ops[4]]);
  });
});

describe('op filter: FLUSHALL and FLUSHDB', () => {
  const flushes = (): Operation[] => [cmd('SET', ['a', '1']), cmd('FLUSHDB', ['ASYNC'], { db: 2, offset: 4242 }), cmd('FLUSHALL', [], { offset: 4300 }), cmd('SET', ['b', '1'])];

  it('apply (the default): kept, FLUSHDB remapped; drop: dropped', () => {
    assert.deepEqual(run({ remap: { 2: 0 } }, flushes()).kept, ['0:SET a 1', '0:FLUSHDB ASYNC', '0:FLUSHALL', '0:SET b 1']);
    assert.deepEqual(run({ flush: 'drop' }, flushes()).dropped, ['2:FLUSHDB ASYNC', '0:FLUSHALL']);
  });

  it('error: apply() throws a FilterError naming the command, db and source offset, and keeps throwing it', () => {
    const f = new OpFilter({ flush: 'error' });
    assert.throws(
      () => f.apply(flushes()),
      (err: unknown) => {
        assert.ok(err instanceof FilterError);
        assert.equal(err.code, 'FLUSH');
        assert.equal(err.command, 'FLUSHDB');
        assert.equal(err.db, 2);
        assert.equal(err.offset, 4242);
        assert.equal(err.shard, 'standalone');
        assert.match(err.message, /FLUSHDB in db 2 at source offset 4242/);
        return true;
      },
    );
    assert.throws(() => f.apply([cmd('SET', ['c', '1'])]), /FLUSHDB in db 2/, 'a stopped filter stays stopped');
    assert.ok(f.failure instanceof FilterError);
  });

  it('a FLUSHDB of an excluded db is dropped under every policy; the command lists do not govern flushes', () => {
    assert.deepEqual(run({ flush: 'error', excludeDbs: [2] }, [cmd('FLUSHDB', [], { db: 2 })]).dropped, ['2:FLUSHDB']);
    assert.deepEqual(run({ preset: 'community' }, [cmd('FLUSHALL', [])]).kept, ['0:FLUSHALL']);
    assert.throws(() => new OpFilter({ deny: ['FLUSHALL'] }), /deny: FLUSHALL cannot be denied: set the flush policy/);
  });
});

describe('op filter: objects and counters', () => {
  it('kept operations are the same objects; unchanged ones are untouched, dropped ones go out as they came', () => {
    const ops = [cmd('SET', ['a', '1']), cmd('SET', ['tmp:a', '1']), keyOp('b'), keyOp('tmp:b')];
    const snapshot = ops.map(show);
    const r = new OpFilter(noTmp).apply(ops);
    assert.equal(r.kept[0], ops[0]);
    assert.equal(r.kept[1], ops[2]);
    assert.equal(r.dropped[0], ops[1]);
    assert.equal(r.dropped[1], ops[3]);
    assert.deepEqual(ops.map(show), snapshot);
    const remapped = cmd('SET', ['a', '1']);
    const args = remapped.args;
    new OpFilter({ remap: { 0: 1 }, keyPrefix: 'p:' }).apply([remapped]);
    assert.equal(remapped.args, args, 'changed in place: same args array');
    assert.equal(show(remapped), '1:SET p:a 1');
  });

  it('a changed key clears the slot a router gave it', () => {
    const op = cmd('SET', ['a', '1']);
    op.slot = 15495;
    const k = keyOp('a');
    k.slot = 15495;
    new OpFilter({ keyPrefix: 'p:' }).apply([op, k]);
    assert.equal(op.slot, undefined);
    assert.equal(k.slot, undefined);
  });

  it('counts what it kept and dropped', () => {
    const f = new OpFilter(noTmp);
    f.apply([cmd('SET', ['a', '1']), cmd('DEL', ['a', 'tmp:b'])]);
    f.apply([cmd('SET', ['tmp:a', '1'])]);
    assert.deepEqual(f.stats, { kept: 2, dropped: 2, lost: {} });
  });
});

describe('op filter: configuration', () => {
  it('reads the node’s text fields', () => {
    const { config, problems } = readFilterSettings({
      preset: 'community', allow: 'copy, xadd\nfunction', deny: 'publish', includeDbs: '0, 2-4', excludeDbs: '3', remap: '0:3, 5:0',
      allDbsToZero: false, keyPrefix: '', includeKeys: 'prefix:user:\n\n# comment\nglob:s:*\nre:^a$', excludeKeys: ' prefix:tmp: ', flush: 'error',
    });
    assert.deepEqual(problems, ['excludeDbs: db 3 is in includeDbs too']);
    assert.deepEqual(config, {
      preset: 'community', allow: ['COPY', 'XADD', 'FUNCTION'], deny: ['PUBLISH'], includeDbs: [0, 2, 3, 4], excludeDbs: [3], remap: { 0: 3, 5: 0 },
      allDbsToZero: false, keyPrefix: '',
      includeKeys: [{ type: 'prefix', pattern: 'user:' }, { type: 'glob', pattern: 's:*' }, { type: 'regex', pattern: '^a$' }],
      excludeKeys: [{ type: 'prefix', pattern: 'tmp:' }], flush: 'error',
    });
    assert.deepEqual(readFilterSettings({}).config.preset, 'all');
    assert.deepEqual(readFilterSettings({}).problems, []);
  });

  it('names the field of every problem', () => {
    assert.deepEqual(readFilterSettings({ includeDbs: '1, x, 5-2', remap: '0:3, 4, 0:1', includeKeys: 'user:*' }).problems, [
      'includeDbs: "x" is not a db number or a range like 2-5',
      'includeDbs: "5-2" is not a db number or a range like 2-5',
      'remap: "4" is not source:destination, e.g. 0:3',
      'remap: db 0 is mapped twice',
      'includeKeys line 1: start it with prefix:, glob: or re:',
    ]);
    const problems = validateFilterConfig({
      preset: 'most' as never, flush: 'sometimes' as never, allow: ['SET', 'bad name', 'FLUSHDB'], deny: ['MULTI', 'SET'], remap: { 0: 1 }, allDbsToZero: true,
      keyPrefix: 'db{db}', includeKeys: [{ type: 'regex', pattern: '(a' }, { type: 'glob', pattern: '' }], excludeKeys: [{ type: 'wild' as never, pattern: 'x' }],
      excludeDbs: [-1],
    });
    assert.deepEqual(problems.map((p) => p.split(':')[0]), ['preset', 'flush', 'allow', 'allow', 'deny', 'deny', 'excludeDbs', 'remap', 'includeKeys[0]', 'includeKeys[1]', 'excludeKeys[0]']);
    assert.match(problems[8], /Invalid regular expression/);
    assert.match(validateFilterConfig({ keyPrefix: 'db{db}:' })[0], /keyPrefix: \{db\} tells the dbs apart once they all go to db 0/);
    assert.throws(() => new OpFilter({ includeKeys: [{ type: 'regex', pattern: '[' }] }), /op filter configuration: includeKeys\[0\]: Invalid regular expression/);
  });
});

/** What a db holds, by key: type, value and whether it expires, readable in a diff. */
async function contents(c: Redis, db: number): Promise<Record<string, string>> {
  await c.select(db);
  const out: Record<string, string> = {};
  for (const key of await c.keysBuffer('*')) {
    const type = await c.type(key);
    let value: unknown;
    if (type === 'string') value = (await c.getBuffer(key))?.toString('latin1');
    else if (type === 'list') value = await c.lrange(key, 0, -1);
    else if (type === 'set') value = (await c.smembers(key)).sort();
    else if (type === 'zset') value = await c.call('ZRANGE', key, '0', '-1', 'WITHSCORES');
    else if (type === 'hash') value = Object.entries(await c.hgetall(key)).sort();
    else value = (await c.call('XLEN', key)) as number;
    out[key.toString('latin1')] = JSON.stringify([type, value, (await c.pttl(key)) > 0]);
  }
  return out;
}

/** Applies kept operations to a server the plain way (a stand-in for the sink). */
async function applyOps(c: Redis, ops: Operation[]): Promise<void> {
  let db = -1;
  const select = async (to: number): Promise<void> => {
    if (to !== db) await c.call('SELECT', String(to));
    db = to;
  };
  for (const op of ops) {
    if (op.kind === 'key') {
      await select(op.db);
      const payload = buildDumpPayload(op.rdbType, op.raw as Buffer, op.rdbVersion);
      await c.call('RESTORE', op.key, op.expireMs === null ? '0' : String(op.expireMs), payload, 'REPLACE', ...(op.expireMs === null ? [] : ['ABSTTL']));
    } else if (op.kind === 'command') {
      await select(op.db);
      await c.call(op.name, ...op.args);
    }
  }
}

describe('op filter on a live 7.0 replication stream', function () {
  this.timeout(60_000);
  let source: RedisServer;
  let dest: RedisServer;
  let dir: string;
  before(async () => {
    source = await startRedis();
    dest = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'op-filter-'));
  });
  after(async () => {
    await source.stop();
    await dest.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the workload on the source and resolves with every operation replicated for it. */
  async function replicate(name: string, setup: (c: Redis) => Promise<void>, workload: (c: Redis) => Promise<void>): Promise<Operation[]> {
    const c = source.client();
    await c.flushall();
    await setup(c);
    const ops: Operation[] = [];
    const replica = new ReplicaSource({ endpoint: { mode: 'standalone', host: '127.0.0.1', port: source.port }, dir: join(dir, name), batchLatencyMs: 5, onBatch: async (b) => void ops.push(...b) });
    await replica.start();
    try {
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot', 10_000);
      await workload(c);
      await c.set('end-marker', '1');
      await until(() => ops.some((o) => o.kind === 'command' && o.args[0]?.toString() === 'end-marker'), 'the end marker in the stream', 10_000);
    } finally {
      await replica.stop();
    }
    c.disconnect();
    return ops;
  }

  it('"all" keeps every command a 7.0 master replicates', async () => {
    const ops = await replicate(
      'all',
      async () => undefined,
      async (c) => {
        await c.set('a', '1', 'EX', 100);
        await c.setex('b', 100, 'v');
        await c.expire('a', 200);
        await c.getex('a', 'PX', 5000);
        await c.getdel('a');
        await c.incrbyfloat('f', 1.5);
        await c.hincrbyfloat('h', 'f', 1.5);
        await c.rpush('l', '1', '2', '3');
        await c.blpop('l', 0);
        await c.lmpop(1, 'l', 'LEFT');
        await c.sadd('s', '1', '2', '3', '4');
        await c.spop('s', 2);
        await c.pfadd('hll', 'a', 'b');
        await c.pfcount('hll');
        await c.publish('ch', 'm');
        await c.call('SPUBLISH', 'sch', 'm');
        await c.call('FUNCTION', 'LOAD', "#!lua name=lib\nredis.register_function('f', function(keys, args) return redis.call('set', keys[1], args[1]) end)");
        await c.call('FCALL', 'f', '1', 'fk', 'fv');
        await c.call('FUNCTION', 'DELETE', 'lib');
        await c.eval("redis.call('set', KEYS[1], 'x'); redis.call('incr', KEYS[2]); return 1", 2, 'e1', 'e2');
        await c.xadd('st', '*', 'f', 'v');
        await c.xgroup('CREATE', 'st', 'g', '0');
        await c.xreadgroup('GROUP', 'g', 'c', 'STREAMS', 'st', '>');
        await c.multi().set('m1', '1').incr('m2').exec();
        await c.copy('s', 's2');
        await c.move('s2', '2');
        await c.swapdb(0, 1);
        await c.swapdb(0, 1);
        await c.sort('l', 'ALPHA', 'STORE', 'sorted');
        await c.zadd('z', 1, 'a');
        await c.zrangestore('z2', 'z', 0, -1);
        await c.zpopmin('z');
        await c.set('px', 'v', 'PX', 1);
        await new Promise((r) => setTimeout(r, 20));
        await c.get('px');
        await c.select(3);
        await c.flushdb();
        await c.select(0);
      },
    );
    const commands = ops.filter((o): o is CommandOp => o.kind === 'command');
    const names = new Set(commands.map((o) => o.name));
    for (const n of ['PUBLISH', 'SPUBLISH', 'PFCOUNT', 'FUNCTION', 'XCLAIM', 'MULTI', 'EXEC', 'SWAPDB', 'COPY', 'MOVE', 'FLUSHDB', 'PEXPIREAT']) {
      assert.ok(names.has(n), `the 7.0 master replicated ${n} (saw ${[...names].join(' ')})`);
    }
    const r = new OpFilter().apply(ops);
    assert.deepEqual(r.dropped.map(show), []);
  });

  it('what is kept converges the destination to the source’s kept keys, in remapped dbs', async () => {
    const ops = await replicate(
      'converge',
      async (c) => {
        await c.set('snap', '1');
        await c.set('tmp:snap', '1');
        await c.select(5);
        await c.set('in5', '1');
        await c.select(0);
      },
      async (c) => {
        await c.set('a', '1');
        await c.set('tmp:a', '1');
        await c.del('a', 'tmp:a');
        await c.mset('m1', '1', 'tmp:m', '2', 'm2', '3');
        await c.msetnx('n1', '1', 'tmp:n', '2');
        await c.set('r', 'v');
        await c.rename('r', 'tmp:r');
        await c.sadd('s', 'a', 'b');
        await c.smove('s', 'tmp:s', 'a');
        await c.rpush('l', '1', '2', '3', '4');
        await c.lmove('l', 'tmp:l', 'LEFT', 'RIGHT');
        await c.lmove('l', 'tmp:l', 'RIGHT', 'LEFT');
        await c.rpoplpush('l', 'tmp:l');
        await c.lmove('l', 'l2', 'LEFT', 'LEFT');
        await c.sadd('tmp:s2', 'z');
        await c.sadd('s3', 'c');
        // (a kept destination from a dropped source would differ: documented, not converging)
        await c.sunionstore('u', 's', 's3');
        await c.sunionstore('tmp:u', 's', 'tmp:s2');
        await c.multi().set('tmp:t1', '1').incr('tmp:t2').exec();
        await c.multi().set('tmp:t3', '1').incr('t4').exec();
        await c.eval("redis.call('set', KEYS[1], 'x'); redis.call('set', KEYS[2], 'y'); return 1", 2, 'e1', 'tmp:e2');
        await c.unlink('tmp:snap', 'snap');
        await c.set('mv', '1');
        await c.move('mv', 7);
        await c.set('mv2', '1');
        await c.move('mv2', 5);
        await c.select(5);
        await c.set('five', '5');
        await c.select(0);
        await c.swapdb(0, 5);
        await c.select(7);
        await c.set('seven', '7');
        await c.flushdb();
        await c.select(0);
      },
    );
    const dc = dest.client();
    await dc.flushall();
    const cfg: OpFilterConfig = { ...noTmp, excludeDbs: [7], remap: { 0: 3, 5: 6 } };
    await applyOps(dc, new OpFilter(cfg).apply(ops).kept);
    const sc = source.client();
    const keep = new OpFilter(cfg);
    for (const [from, to] of [[0, 3], [5, 6]]) {
      const expected = Object.fromEntries(Object.entries(await contents(sc, from)).filter(([k]) => keep.keyKept(Buffer.from(k, 'latin1'))));
      assert.deepEqual(await contents(dc, to), expected, `source db ${from} in destination db ${to}`);
    }
    for (const db of [0, 5, 7]) assert.deepEqual(await contents(dc, db), {}, `nothing in destination db ${db}`);
  });
});
