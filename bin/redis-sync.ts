#!/usr/bin/env node
import { createReadStream } from 'node:fs';
import { RdbError } from '../lib/rdb/errors';
import { RdbJsonBuilder } from '../lib/rdb/json';
import { parseRdbStream } from '../lib/rdb/source';

const USAGE = `Usage: redis-sync rdb2json <file.rdb | ->

  rdb2json   print the content of an RDB file (Redis 2.6 to 8.x) as one JSON document:
             every db, key, type, value, expire time and function. Keys and values that
             are not valid UTF-8 are printed as "b64:<base64>". Keys that hold no element
             are left out, as Redis leaves them out when it loads the file.`;

async function rdb2json(path: string): Promise<void> {
  const input = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 256 * 1024 });
  const json = new RdbJsonBuilder();
  let emptyKeysSkipped = 0;
  for await (const ev of parseRdbStream(input as AsyncIterable<Buffer>)) {
    if (ev.kind === 'end') emptyKeysSkipped = ev.emptyKeysSkipped;
    json.add(ev);
  }
  const text = JSON.stringify(json.result(), null, 2) + '\n';
  await new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
  // Redis logs the same count when it loads such a file
  if (emptyKeysSkipped > 0) process.stderr.write(`redis-sync rdb2json: ${path}: ${emptyKeysSkipped} empty keys skipped, as Redis skips them\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, file, ...rest] = argv;
  if (command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (command !== 'rdb2json' || file === undefined || rest.length > 0) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  try {
    await rdb2json(file);
    return 0;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const what = err instanceof RdbError ? err.message : e.code === 'ENOENT' ? `no such file: ${file}` : String(e.message ?? err);
    process.stderr.write(`redis-sync rdb2json: ${file}: ${what}\n`);
    return 1;
  }
}

// `redis-sync rdb2json x.rdb | head` closes the pipe early; that is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
