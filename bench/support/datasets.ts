/**
 * Generates the RDB files bench/rdb.ts parses, in real redis-server processes, and caches
 * them (with a JSON sidecar naming the parameters) so later runs reuse them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseInfo } from '../../lib/server/info';
import { startServer, type BenchServer } from './redis';

/**
 * The script of the reference data set every performance figure of this project is quoted
 * on. Keep it byte for byte: the figures in README.md were measured with exactly this key mix,
 * and its hash is one of the parameters a cached RDB is reused for. Keys `k:<i>`; by i % 10,
 * 0-5 a string of VALSIZE bytes plus the digits of i, 6 a hash of 10 fields, 7 a list of 10
 * items, 8 a set of 10 members, 9 a sorted set of 10 members; 1,000,000 keys of VALSIZE 100
 * take about 277 MB of Redis memory. It runs inside the server (`redis-cli --eval
 * populate.lua , START COUNT VALSIZE`), in slices, since one EVAL blocks the server while it runs.
 */
export const POPULATE_LUA = path.join(__dirname, 'populate.lua');

export interface CachedRdb {
  path: string;
  bytes: number;
  /** True when the file came from the cache. */
  reused: boolean;
  /** Time to fill the server, SAVE, and stop it (0 when reused). */
  generateSeconds: number;
}

type Params = Record<string, string | number>;

function redisVersion(): string {
  return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function sameParams(a: Params, b: Params): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/**
 * Returns `<cacheDir>/<name>.rdb`, generating it first unless the cached file was made with
 * exactly `params` (plus the redis-server version). The sidecar is written last, so a run
 * that died half way is never mistaken for a complete file.
 */
async function ensureRdb(
  cacheDir: string,
  name: string,
  params: Params,
  fill: (server: BenchServer, log: (msg: string) => void) => Promise<void>,
  log: (msg: string) => void,
): Promise<CachedRdb> {
  mkdirSync(cacheDir, { recursive: true });
  const rdbPath = path.join(cacheDir, `${name}.rdb`);
  const metaPath = path.join(cacheDir, `${name}.json`);
  const want: Params = { ...params, redis: redisVersion() };
  if (existsSync(metaPath) && existsSync(rdbPath)) {
    try {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { params: Params; bytes: number };
      const bytes = statSync(rdbPath).size;
      if (sameParams(meta.params, want) && meta.bytes === bytes) {
        return { path: rdbPath, bytes, reused: true, generateSeconds: 0 };
      }
    } catch {
      // unreadable sidecar: regenerate
    }
  }
  rmSync(metaPath, { force: true });
  rmSync(rdbPath, { force: true });
  log(`generating ${rdbPath} (${JSON.stringify(params)}) ...`);
  const t0 = performance.now();
  // The server's directory lives in the cache dir, so dump.rdb can be renamed, not copied.
  const server = await startServer(cacheDir);
  try {
    await fill(server, log);
    const tSave = performance.now();
    await server.cli('SAVE');
    log(`  SAVE took ${((performance.now() - tSave) / 1000).toFixed(1)} s`);
    const dump = path.join(server.dir, 'dump.rdb');
    try {
      renameSync(dump, `${rdbPath}.tmp`);
    } catch {
      copyFileSync(dump, `${rdbPath}.tmp`);
    }
  } finally {
    await server.stop();
  }
  renameSync(`${rdbPath}.tmp`, rdbPath);
  const bytes = statSync(rdbPath).size;
  writeFileSync(metaPath, `${JSON.stringify({ params: want, bytes, created: new Date().toISOString() }, null, 2)}\n`);
  const generateSeconds = (performance.now() - t0) / 1000;
  log(`  done: ${(bytes / 1e6).toFixed(1)} MB in ${generateSeconds.toFixed(1)} s`);
  return { path: rdbPath, bytes, reused: false, generateSeconds };
}

function usedMemory(info: string): string {
  return parseInfo(info).used_memory_human ?? '?';
}

/** The reference data set (POPULATE_LUA), `keys` keys, in slices of `slice`. */
export function ensureReferenceRdb(cacheDir: string, keys: number, valsize: number, log: (msg: string) => void): Promise<CachedRdb> {
  const slice = 50_000;
  const script = readFileSync(POPULATE_LUA);
  return ensureRdb(cacheDir, `reference-${keys}-v${valsize}`, { keys, valsize, populate: sha256(script) }, async (server) => {
    for (let start = 0; start < keys; start += slice) {
      const n = Math.min(slice, keys - start);
      // One EVAL blocks the server while it runs, hence the slices.
      await server.cli('--eval', POPULATE_LUA, ',', String(start), String(n), String(valsize));
      if ((start / slice) % 10 === 9) log(`  ${start + n} / ${keys} keys`);
    }
    const dbsize = Number(await server.cli('DBSIZE'));
    if (dbsize !== keys) throw new Error(`populate.lua left ${dbsize} keys, expected ${keys}`);
    log(`  ${keys} keys, redis used_memory ${usedMemory(await server.cli('INFO', 'memory'))}`);
  }, log);
}

/**
 * One hash `bighash` of `fields` fields "f<i>" with `valsize`-byte values. The values are
 * slices of a random byte pool, so LZF cannot shrink them and the RDB really holds
 * fields x (valsize + ~10) bytes. Above 128 fields the hash is hashtable-encoded, so the
 * RDB stores it as type 4 (HASH) with one string per field and per value.
 */
const BIG_HASH_LUA = `
local key = KEYS[1]; local s = tonumber(ARGV[1]); local n = tonumber(ARGV[2]); local vs = tonumber(ARGV[3])
math.randomseed(s)
local parts = {}
for i = 1, 8192 + vs do parts[i] = string.char(math.random(0, 255)) end
local pool = table.concat(parts)
for i = s, s + n - 1 do
  local o = (i * 7919) % 8192 + 1
  redis.call('HSET', key, 'f' .. i, pool:sub(o, o + vs - 1))
end
return n`;

export function ensureBigHashRdb(cacheDir: string, fields: number, valsize: number, log: (msg: string) => void): Promise<CachedRdb> {
  const slice = 100_000;
  return ensureRdb(cacheDir, `bighash-${fields}-v${valsize}`, { fields, valsize, script: sha256(BIG_HASH_LUA) }, async (server) => {
    for (let start = 0; start < fields; start += slice) {
      const n = Math.min(slice, fields - start);
      await server.cli('EVAL', BIG_HASH_LUA, '1', 'bighash', String(start), String(n), String(valsize));
      if ((start / slice) % 20 === 19) log(`  ${start + n} / ${fields} fields`);
    }
    const hlen = Number(await server.cli('HLEN', 'bighash'));
    if (hlen !== fields) throw new Error(`bighash has ${hlen} fields, expected ${fields}`);
    const encoding = await server.cli('OBJECT', 'ENCODING', 'bighash');
    log(`  bighash: ${hlen} fields, encoding ${encoding}, redis used_memory ${usedMemory(await server.cli('INFO', 'memory'))}`);
  }, log);
}
