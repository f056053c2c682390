import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The RDB fixtures (test/fixtures/rdb): real files written by Redis 2.8 to 8.0, each with its expected JSON. */
export const FIXTURES_DIR = resolve(__dirname, '..', 'fixtures', 'rdb');

export interface RdbFixture {
  release: string;
  name: string;
  rdbPath: string;
  expected: ExpectedRdb;
}

export interface ExpectedRdb {
  redis_version: string;
  rdb_version: number;
  databases: Record<string, Record<string, ExpectedKey>>;
  functions: unknown[];
}

export interface ExpectedKey {
  type: string;
  encoding?: string;
  expire_ms: number | null;
  value: unknown;
  field_expire_ms?: Record<string, number>;
  lfu_freq?: number;
  lru_idle_s?: number;
  slot?: number;
}

export function listRdbFixtures(): RdbFixture[] {
  const out: RdbFixture[] = [];
  for (const release of readdirSync(FIXTURES_DIR).sort()) {
    if (!release.startsWith('redis-')) continue;
    for (const f of readdirSync(join(FIXTURES_DIR, release)).sort()) {
      if (!f.endsWith('.rdb')) continue;
      const name = f.slice(0, -4);
      const expected = JSON.parse(readFileSync(join(FIXTURES_DIR, release, `${name}.json`), 'utf8')) as ExpectedRdb;
      out.push({ release, name, rdbPath: join(FIXTURES_DIR, release, f), expected });
    }
  }
  return out;
}
