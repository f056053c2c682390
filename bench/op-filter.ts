/**
 * Op filter throughput: batches of 1000 operations (a replication-stream-like mix of
 * commands, plus snapshot keys) through OpFilter.apply() under several configurations.
 * Prints ops/s per configuration; asserts nothing but the counts.
 *
 *   npx tsx bench/op-filter.ts [operations, default 2000000]
 */
import { OpFilter } from '../lib/ops/filter';
import type { OpFilterConfig } from '../lib/ops/filter-config';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';

const TOTAL = Number(process.argv[2] ?? 2_000_000);
const BATCH = 1000;

function command(name: string, args: string[], keys: number[], db: number): CommandOp {
  return { kind: 'command', db, name, args: args.map((a) => Buffer.from(a)), keys, shard: 'standalone', offset: 0, tx: 0 };
}

function key(name: string, db: number): KeyOp {
  return {
    kind: 'key', db, key: Buffer.from(name), type: 'string', value: null, raw: Buffer.from('value'), rdbType: 0, expireMs: null, idleSeconds: null,
    lfuFreq: null, chunk: null, offset: 0, shard: 'standalone', rdbVersion: 10,
  };
}

/** The operations, made anew for each configuration: the filter changes kept ones in place. */
function batches(): Operation[][] {
  const out: Operation[][] = [];
  for (let b = 0; b < TOTAL / BATCH; b++) {
    const batch: Operation[] = [];
    for (let i = 0; i < BATCH; i++) {
      const n = b * BATCH + i;
      const db = n % 7 === 0 ? 1 : 0;
      const k = `${n % 10 === 0 ? 'tmp:' : 'user:'}${n % 50_000}`;
      switch (n % 8) {
        case 0:
          batch.push(key(k, db));
          break;
        case 1:
          batch.push(command('INCR', [k], [0], db));
          break;
        case 2:
          batch.push(command('HSET', [k, 'field', 'value'], [0], db));
          break;
        case 3:
          batch.push(command('DEL', [k, `tmp:${n}`], [0, 1], db));
          break;
        case 4:
          batch.push(command('MSET', [k, 'v', `user:x${n}`, 'w'], [0, 2], db));
          break;
        default:
          batch.push(command('SET', [k, 'some value'], [0], db));
      }
    }
    out.push(batch);
  }
  return out;
}

const configs: Array<[string, OpFilterConfig]> = [
  ['defaults (keep all writes)', {}],
  ['exclude prefix tmp:', { excludeKeys: [{ type: 'prefix', pattern: 'tmp:' }] }],
  ['exclude glob *:1?3*', { excludeKeys: [{ type: 'glob', pattern: '*:1?3*' }] }],
  ['exclude regex ^tmp:\\d+$', { excludeKeys: [{ type: 'regex', pattern: '^tmp:\\d+$' }] }],
  ['community preset, exclude db 1, remap 0:3', { preset: 'community', excludeDbs: [1], remap: { 0: 3 } }],
  ['every db to 0 with prefix db{db}:', { allDbsToZero: true, keyPrefix: 'db{db}:' }],
];

for (const [name, cfg] of configs) {
  const input = batches();
  const filter = new OpFilter(cfg);
  const start = process.hrtime.bigint();
  let kept = 0;
  for (const batch of input) kept += filter.apply(batch).kept.length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = Math.round(TOTAL / seconds);
  console.log(`${name.padEnd(44)} ${rate.toLocaleString('en-US').padStart(12)} ops/s  (kept ${kept}, dropped ${filter.stats.dropped})`);
}
