import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { listRdbFixtures } from './support/fixtures';

const BIN = resolve(__dirname, '..', 'bin', 'redis-sync.ts');

function run(args: string[], input?: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(process.execPath, ['--import', 'tsx', BIN, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (input) child.stdin?.end(input);
  });
}

describe('redis-sync rdb2json', function () {
  this.timeout(60_000);
  const fixtures = listRdbFixtures();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rdb2json-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a fixture in the fixture schema: same dbs, keys, types, values and functions', async () => {
    const fx = fixtures.find((f) => f.release === 'redis-7.4.1' && f.name === 'all-types');
    assert.ok(fx);
    const { code, stdout } = await run(['rdb2json', fx.rdbPath]);
    assert.equal(code, 0);
    const doc = JSON.parse(stdout);
    assert.equal(doc.rdb_version, 12);
    assert.equal(doc.redis_version, '7.4.1');
    assert.deepEqual(doc.functions, fx.expected.functions);
    for (const [db, keys] of Object.entries(fx.expected.databases)) {
      assert.deepEqual(Object.keys(doc.databases[db]).sort(), Object.keys(keys).sort());
      for (const [k, v] of Object.entries(keys)) {
        assert.equal(doc.databases[db][k].type, v.type, k);
        assert.equal(doc.databases[db][k].expire_ms, v.expire_ms, k);
        if (v.type === 'string' || v.type === 'list' || v.type === 'set' || v.type === 'hash') assert.deepEqual(doc.databases[db][k].value, v.value, k);
        assert.equal(doc.databases[db][k].encoding, undefined, 'a parser cannot know the encoding');
      }
    }
  });

  it('reads from standard input with "-"', async () => {
    const fx = fixtures.find((f) => f.release === 'redis-2.8.24' && f.name === 'all-types');
    assert.ok(fx);
    const { code, stdout } = await run(['rdb2json', '-'], readFileSync(fx.rdbPath));
    assert.equal(code, 0);
    assert.deepEqual(Object.keys(JSON.parse(stdout).databases).sort(), Object.keys(fx.expected.databases).sort());
  });

  it("leaves out the keys that hold no element, as Redis does, and says how many on standard error (Redis's corrupt_empty_keys.rdb)", async () => {
    const { code, stdout, stderr } = await run(['rdb2json', resolve(__dirname, 'fixtures', 'redis-assets', 'corrupt_empty_keys.rdb')]);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout).databases, {});
    assert.match(stderr, /corrupt_empty_keys\.rdb: 9 empty keys skipped, as Redis skips them/);
  });

  it('exits 1 with the parser error (code and byte offset) on a damaged file', async () => {
    const fx = fixtures.find((f) => f.release === 'redis-7.0.15' && f.name === 'all-types');
    assert.ok(fx);
    const cut = join(dir, 'cut.rdb');
    writeFileSync(cut, readFileSync(fx.rdbPath).subarray(0, 5000));
    const r = await run(['rdb2json', cut]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /cut\.rdb: RDB TRUNCATED at byte 5000: the input ended inside/);
  });

  it('exits 1 naming a missing file, and 2 with usage on bad arguments', async () => {
    const missing = await run(['rdb2json', join(dir, 'nope.rdb')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such file/);
    const usage = await run(['json2rdb']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Usage: redis-sync rdb2json/);
  });
});
