import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { RdbError } from '../lib/rdb/errors';
import { RdbParser } from '../lib/rdb/parser';
import { listRdbFixtures } from './support/fixtures';

/** Deterministic, so a failing case can be replayed: REDIS_SYNC_FUZZ_SEED=<seed>. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x00, 0xff, 0x80, 0x81, 0xc0, 0xc3, 0x3f, 0x40, 0x7f, 0xfe, 0xfa, 0x01];

function mutate(src: Buffer, rnd: () => number): Buffer {
  const pick = (n: number): number => Math.floor(rnd() * n);
  let b = Buffer.from(src);
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    const at = pick(b.length);
    switch (pick(6)) {
      case 0:
        b[at] ^= 1 << pick(8);
        break;
      case 1:
        b[at] = INTERESTING[pick(INTERESTING.length)];
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + pick(16)))]);
        break;
      case 3: {
        const ins = Buffer.alloc(1 + pick(8));
        for (let i = 0; i < ins.length; i++) ins[i] = pick(256);
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 4:
        b = b.subarray(0, at);
        break;
      default: {
        const len = 1 + pick(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
      }
    }
    if (b.length === 0) break;
  }
  return b;
}

describe('RDB parser fuzz', function () {
  this.timeout(300_000);

  it('ends every mutated fixture in success or an RdbError with a sane offset (10,000 cases)', () => {
    const seed = Number(process.env.REDIS_SYNC_FUZZ_SEED ?? Date.now() % 1_000_000);
    const rnd = prng(seed);
    const files = listRdbFixtures().map((f) => ({ name: `${f.release}/${f.name}`, data: readFileSync(f.rdbPath) }));
    const outcomes = new Map<string, number>();
    const CASES = 10_000;
    for (let n = 0; n < CASES; n++) {
      const file = files[Math.floor(rnd() * files.length)];
      const data = mutate(file.data, rnd);
      const chunk = 1 + Math.floor(rnd() * 8192);
      // half of the cases walk values without decoding them, a path of its own
      const parser = new RdbParser({ decodeValues: n % 2 === 0, bigKeyBytes: n % 3 === 0 ? 1000 : undefined });
      try {
        for (let at = 0; at < data.length; at += chunk) parser.push(data.subarray(at, at + chunk));
        parser.finish();
        outcomes.set('parsed', (outcomes.get('parsed') ?? 0) + 1);
      } catch (e) {
        if (!(e instanceof RdbError)) {
          assert.fail(`seed ${seed} case ${n} (${file.name}, ${data.length} bytes, chunk ${chunk}): not an RdbError: ${(e as Error).stack}`);
        }
        assert.ok(Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= data.length, `seed ${seed} case ${n}: offset ${e.offset} outside 0..${data.length}: ${e.message}`);
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      }
    }
    const summary = [...outcomes].map(([k, v]) => `${k}=${v}`).join(' ');
    // The mutations must reach deep into the format, not stop at the header.
    for (const code of ['TRUNCATED', 'BAD_CHECKSUM', 'BAD_ENCODING', 'UNKNOWN_TYPE', 'BAD_LENGTH']) {
      assert.ok((outcomes.get(code) ?? 0) > 0, `seed ${seed}: no ${code} in ${summary}`);
    }
    assert.equal([...outcomes.values()].reduce((a, b) => a + b, 0), CASES);
  });
});
