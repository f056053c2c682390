import assert from 'node:assert/strict';
import {
  ALL_WRITE_COMMANDS,
  commandOf,
  isReplaySafe,
  isScript,
  keysOf,
  leftBehind,
  NAMES_A_DB,
  NOT_IN_A_DB,
  NOT_LISTABLE,
  Rule,
  ruleOf,
  sortOptions,
  splitterOf,
  TO_EVERY_MASTER,
  TX_MARKERS,
} from '../lib/ops/commands';
import type { CommandOp } from '../lib/ops/operation';
import { startRedis, type RedisServer } from './harness';

const bufs = (args: string[]): Buffer[] => args.map((a) => Buffer.from(a, 'latin1'));
const keyNames = (name: string, args: string[]): string[] => keysOf(name, bufs(args)).map((i) => args[i]);

function op(name: string, args: string[]): CommandOp {
  const b = bufs(args);
  return { kind: 'command', db: 0, name, args: b, keys: keysOf(name, b), shard: 'standalone', offset: 100, tx: 0 };
}
const show = (o: { name: string; args: Buffer[] }): string => [o.name, ...o.args.map((a) => a.toString('latin1'))].join(' ');

/**
 * Commands whose keys depend on their arguments, or on a subcommand: the table must find
 * what Redis itself finds for them.
 */
const ARGUMENT_DEPENDENT: string[][] = [
  ['EVAL', 'return 1', '2', 'a', 'b', 'arg'],
  ['EVAL', 'return 1', '0', 'arg'],
  ['EVALSHA', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '1', 'a', 'arg'],
  ['FCALL', 'f', '2', 'a', 'b', 'arg'],
  ['SORT', 'l', 'BY', 'w_*', 'LIMIT', '0', '5', 'GET', 'o_*->f', 'GET', '#', 'ALPHA', 'STORE', 'out'],
  ['SORT', 'l', 'BY', 'nosort', 'GET', '#'],
  ['SORT', 'l', 'STORE', 'a', 'STORE', 'b'],
  ['XREAD', 'COUNT', '2', 'STREAMS', 's1', 's2', '0', '0'],
  ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', 's1', 's2', 's3', '>', '>', '>'],
  ['ZUNIONSTORE', 'd', '3', 'a', 'b', 'c', 'WEIGHTS', '1', '2', '3'],
  ['ZINTERSTORE', 'd', '2', 'a', 'b', 'AGGREGATE', 'MAX'],
  ['ZDIFFSTORE', 'd', '2', 'a', 'b'],
  ['GEORADIUS', 'k', '0', '0', '1', 'km', 'STORE', 'd'],
  ['GEORADIUS', 'k', '0', '0', '1', 'km', 'STORE', 'd', 'STOREDIST', 'e'],
  ['GEORADIUSBYMEMBER', 'k', 'm', '1', 'km', 'STOREDIST', 'e'],
  ['MIGRATE', 'h', '6379', 'k', '0', '5000'],
  ['MIGRATE', 'h', '6379', '', '0', '5000', 'COPY', 'REPLACE', 'KEYS', 'a', 'b'],
  ['LMPOP', '2', 'a', 'b', 'LEFT', 'COUNT', '3'],
  ['BLMPOP', '0', '2', 'a', 'b', 'RIGHT'],
  ['ZMPOP', '1', 'z', 'MIN'],
  ['BZMPOP', '0', '2', 'y', 'z', 'MAX'],
  ['SINTERCARD', '2', 'a', 'b', 'LIMIT', '1'],
  ['OBJECT', 'ENCODING', 'k'],
  ['OBJECT', 'FREQ', 'k'],
  ['MEMORY', 'USAGE', 'k', 'SAMPLES', '5'],
  ['XGROUP', 'CREATE', 's', 'g', '$', 'MKSTREAM'],
  ['XINFO', 'STREAM', 's'],
  ['BITOP', 'AND', 'd', 'a', 'b'],
  ['MSET', 'a', '1', 'b', '2'],
  ['RENAME', 'a', 'b'],
  ['COPY', 'a', 'b', 'DB', '3', 'REPLACE'],
  ['SET', 'a', '1', 'EX', '10'],
];

describe('command table', function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(() => server.stop());

  it('finds the keys Redis finds (COMMAND GETKEYS), for commands whose keys depend on their arguments or subcommand', async () => {
    for (const argv of ARGUMENT_DEPENDENT) {
      const redis = ((await server.command('COMMAND', 'GETKEYS', ...argv)) as Array<string | Buffer>).map(String);
      const [name, ...args] = argv;
      assert.deepEqual(keyNames(name, args), redis, argv.join(' '));
    }
  });

  it('finds keys beyond COMMAND GETKEYS: the channel of SPUBLISH (its slot on a cluster), MSETEX of Redis 8.4; none for a command it does not know', async () => {
    // 7.0 says "no key arguments": the shard channel is a key to the router only
    await assert.rejects(server.command('COMMAND', 'GETKEYS', 'SPUBLISH', 'ch', 'm'), /no key arguments/);
    assert.deepEqual(keyNames('SPUBLISH', ['ch', 'm']), ['ch']);
    assert.deepEqual(keyNames('PUBLISH', ['ch', 'm']), []);
    assert.deepEqual(keyNames('MSETEX', ['2', 'a', '1', 'b', '2', 'NX', 'PX', '100']), ['a', 'b']);
    assert.deepEqual(keyNames('NOTACOMMANDYET', ['a', 'b']), []);
  });

  it('reads a name in any case once, and hands out a key list of its own each time', () => {
    assert.equal(commandOf('set'), commandOf('set'));
    assert.equal(commandOf('sEt').name, 'SET');
    const args = bufs(['a', '1']);
    const first = keysOf('set', args);
    first.push(99);
    assert.deepEqual(keysOf('SET', args), [0]);
    assert.deepEqual(keysOf('Sort', bufs(['l', 'store', 'd'])), [0, 2]);
  });

  it('parses SORT’s options once: STORE, the GET words, and the BY/GET patterns (GET # is none)', () => {
    assert.deepEqual(sortOptions(bufs(['l', 'BY', 'w_*', 'LIMIT', '0', '5', 'GET', '#', 'GET', 'o_*', 'STORE', 'd'])), { store: 11, gets: [6, 8], patterns: [2, 9] });
    // LIMIT's numbers are skipped, whatever they spell
    assert.deepEqual(sortOptions(bufs(['l', 'LIMIT', 'STORE', '1'])), { store: -1, gets: [], patterns: [] });
    assert.deepEqual(sortOptions(bufs(['l', 'STORE'])), { store: -1, gets: [], patterns: [] });
  });

  it('says which commands replay harmlessly: assignments, ZADD/GEOADD without INCR, RESTORE … REPLACE', () => {
    for (const [name, args] of [['SET', ['a', '1']], ['DEL', ['a']], ['MSET', ['a', '1']], ['HSET', ['h', 'f', 'v']], ['ZADD', ['z', '1', 'm']], ['GEOADD', ['g', '0', '0', 'm']], ['RESTORE', ['k', '0', 'p', 'replace']]] as const) {
      assert.equal(isReplaySafe(name, bufs([...args])), true, name);
    }
    for (const [name, args] of [['INCR', ['a']], ['RPUSH', ['l', 'v']], ['ZADD', ['z', 'INCR', '1', 'm']], ['GEOADD', ['g', 'incr', '0', '0', 'm']], ['RESTORE', ['k', '0', 'p']], ['XADD', ['s', '*', 'f', 'v']], ['MSETNX', ['a', '1']], ['NOTACOMMANDYET', []]] as const) {
      assert.equal(isReplaySafe(name, bufs([...args])), false, name);
    }
  });

  it('splits the lists of independent one-key writes, and nothing else', () => {
    const split = (name: string, args: string[], positions: number[]): string => show((splitterOf(name) as NonNullable<ReturnType<typeof splitterOf>>)(op(name, args), positions));
    assert.equal(split('DEL', ['a', 'b', 'c'], [0, 2]), 'DEL a c');
    assert.equal(split('UNLINK', ['a', 'b'], [1]), 'UNLINK b');
    assert.equal(split('TOUCH', ['a', 'b'], [1]), 'TOUCH b');
    assert.equal(split('MSET', ['a', '1', 'b', '2'], [1]), 'MSET b 2');
    assert.equal(split('MSETNX', ['a', '1', 'b', '2'], [0]), 'MSET a 1');
    assert.equal(split('MSETEX', ['2', 'a', '1', 'b', '2', 'NX', 'PX', '100'], [1]), 'MSETEX 1 b 2 PX 100');
    for (const name of ['EXISTS', 'RENAME', 'SUNIONSTORE', 'EVAL', 'SET']) assert.equal(splitterOf(name), undefined, name);
  });

  it('knows how the keys of a multi-key write relate, and what a move leaves on its source key', () => {
    assert.deepEqual(['DEL', 'MSET', 'RENAME', 'SUNIONSTORE', 'BITOP', 'GEORADIUS', 'SORT', 'EVAL'].map(ruleOf), [Rule.SPLIT, Rule.SPLIT_PAIRS, Rule.MOVE, Rule.STORE_FIRST, Rule.STORE_FIRST, Rule.STORE_LAST, Rule.SORT, undefined]);
    const left = (name: string, args: string[]): string => show(leftBehind(op(name, args)));
    assert.equal(left('RENAME', ['a', 'b']), 'DEL a');
    assert.equal(left('RENAMENX', ['a', 'b']), 'DEL a');
    assert.equal(left('SMOVE', ['a', 'b', 'm']), 'SREM a m');
    assert.equal(left('LMOVE', ['a', 'b', 'left', 'RIGHT']), 'LPOP a');
    assert.equal(left('BLMOVE', ['a', 'b', 'RIGHT', 'LEFT', '0']), 'RPOP a');
    assert.equal(left('RPOPLPUSH', ['a', 'b']), 'RPOP a');
    assert.equal(left('BRPOPLPUSH', ['a', 'b', '0']), 'RPOP a');
    for (const name of ['RENAME', 'RENAMENX', 'SMOVE', 'LMOVE', 'BLMOVE', 'RPOPLPUSH', 'BRPOPLPUSH']) assert.equal(ruleOf(name), Rule.MOVE, name);
    assert.deepEqual(['EVAL', 'EVALSHA', 'FCALL', 'EVAL_RO', 'SET'].map(isScript), [true, true, true, false, false]);
  });

  it('places the keyless commands: transaction markers, what every master runs, what acts on no db or names a second one', () => {
    const sorted = (s: ReadonlySet<string>): string[] => [...s].sort();
    assert.deepEqual(sorted(TX_MARKERS), ['DISCARD', 'EXEC', 'MULTI']);
    assert.deepEqual(sorted(TO_EVERY_MASTER), ['FLUSHALL', 'FLUSHDB', 'FUNCTION', 'SCRIPT']);
    assert.deepEqual(sorted(NOT_IN_A_DB), ['DISCARD', 'EXEC', 'FLUSHALL', 'FUNCTION', 'MULTI', 'PUBLISH', 'SCRIPT', 'SPUBLISH']);
    assert.deepEqual(sorted(NAMES_A_DB), ['COPY', 'MOVE', 'SWAPDB']);
    assert.deepEqual(sorted(NOT_LISTABLE), ['DISCARD', 'EXEC', 'FLUSHALL', 'FLUSHDB', 'MULTI']);
  });

  it('counts among the writes what a master replicates unflagged, and the write subcommands of containers', () => {
    for (const name of ['PUBLISH', 'SPUBLISH', 'PFCOUNT', 'MULTI', 'EXEC', 'DISCARD', 'EVAL', 'EVALSHA', 'FCALL', 'SCRIPT', 'SELECT', 'FUNCTION', 'XGROUP', 'SET', 'SWAPDB']) {
      assert.ok(ALL_WRITE_COMMANDS.has(name), name);
    }
    for (const name of ['GET', 'KEYS', 'PING', 'REPLCONF', 'SUBSCRIBE']) assert.ok(!ALL_WRITE_COMMANDS.has(name), name);
  });
});
