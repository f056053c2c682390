#!/usr/bin/env node
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { endpointFromUrl } from '../lib/endpoint/url';
import { parseDbList } from '../lib/ops/db-list';
import { RdbError } from '../lib/rdb/errors';
import { RdbJsonBuilder } from '../lib/rdb/json';
import { parseRdbStream } from '../lib/rdb/source';
import { DEFAULT_RATE, DEFAULT_ROUNDS, DEFAULT_TTL_TOLERANCE_MS, parseSample, verify, VerifySide, type VerifyOptions } from '../lib/verify';

const USAGE = `Usage: redis-sync rdb2json <file.rdb | ->
       redis-sync verify <source> <destination> [options]

  rdb2json   print the content of an RDB file (Redis 2.6 to 8.x) as one JSON document:
             every db, key, type, value, expire time and function. Keys and values that
             are not valid UTF-8 are printed as "b64:<base64>". Keys that hold no element
             are left out, as Redis leaves them out when it loads the file.

  verify     compare every key of the source with the destination (existence, type, value,
             TTL, stream groups) and print the report as JSON; exit 0 when equal, 1 when
             not, 2 on an error. Endpoints: redis://[user[:password]@]host:port, rediss://
             for TLS, cluster://[user[:password]@]host:port[,host:port…] (clusters:// for
             TLS); a user and password not in the URL come from REDIS_SYNC_SOURCE_USER,
             REDIS_SYNC_SOURCE_PASSWORD, REDIS_SYNC_DESTINATION_USER and
             REDIS_SYNC_DESTINATION_PASSWORD.
    --dbs 0,2-4          source dbs (default: every db with keys)
    --match GLOB         only keys matching the glob (SCAN MATCH)
    --sample 10%|N       a share of the keys, or a number of them
    --rate N             keys a second, 0 for no limit (default ${DEFAULT_RATE})
    --rounds N           read a differing key again, N rounds in all (default ${DEFAULT_ROUNDS})
    --round-delay MS     the wait before each later round (default 1000)
    --ttl-tolerance MS   how far two expiry times may be apart (default ${DEFAULT_TTL_TOLERANCE_MS})
    --extra              also report keys only the destination has`;

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

/** A numeric option from min up; absent gives the default. */
function numberOption(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`--${name}: "${value}" is not a number of at least ${min}`);
  return n;
}

class UsageError extends Error {}

async function verifyCommand(args: string[]): Promise<number> {
  let options: VerifyOptions;
  let sourceUrl: string;
  let destinationUrl: string;
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        dbs: { type: 'string' },
        match: { type: 'string' },
        sample: { type: 'string' },
        rate: { type: 'string' },
        rounds: { type: 'string' },
        'round-delay': { type: 'string' },
        'ttl-tolerance': { type: 'string' },
        extra: { type: 'boolean' },
      },
    });
    if (positionals.length !== 2) throw new UsageError('verify takes a source and a destination');
    [sourceUrl, destinationUrl] = positionals;
    const problems: string[] = [];
    const dbs = parseDbList(values.dbs, '--dbs', problems);
    if (problems.length > 0) throw new UsageError(problems.join('; '));
    options = {
      dbs: dbs.length > 0 ? dbs : undefined,
      match: values.match,
      sample: parseSample(values.sample),
      rate: numberOption(values.rate, 'rate', DEFAULT_RATE, 0),
      rounds: numberOption(values.rounds, 'rounds', DEFAULT_ROUNDS, 1),
      roundDelayMs: numberOption(values['round-delay'], 'round-delay', 1000, 0),
      ttlToleranceMs: numberOption(values['ttl-tolerance'], 'ttl-tolerance', DEFAULT_TTL_TOLERANCE_MS, 0),
      extra: values.extra === true,
    };
  } catch (err) {
    process.stderr.write(`redis-sync verify: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const env = process.env;
  let source: VerifySide | null = null;
  let destination: VerifySide | null = null;
  const stop = new AbortController();
  const interrupt = (): void => stop.abort();
  process.once('SIGINT', interrupt);
  // a progress line only on a terminal: a pipe or a log file gets the report alone
  const tty = process.stderr.isTTY === true;
  try {
    const sourceConfig = endpointFromUrl(sourceUrl, { username: env.REDIS_SYNC_SOURCE_USER, password: env.REDIS_SYNC_SOURCE_PASSWORD });
    const destinationConfig = endpointFromUrl(destinationUrl, { username: env.REDIS_SYNC_DESTINATION_USER, password: env.REDIS_SYNC_DESTINATION_PASSWORD });
    source = await VerifySide.open('source', sourceConfig);
    destination = await VerifySide.open('destination', destinationConfig);
    const report = await verify(source, destination, {
      ...options,
      signal: stop.signal,
      onProgress: tty ? (p) => process.stderr.write(`\rverifying ${p.percent}%  ${p.compared} keys compared, ${p.pending} to check again (round ${p.round} of ${p.rounds})\x1b[K`) : undefined,
    });
    if (tty) process.stderr.write('\n');
    await new Promise<void>((resolve, reject) => process.stdout.write(JSON.stringify(report, null, 2) + '\n', (err) => (err ? reject(err) : resolve())));
    return report.equal ? 0 : 1;
  } catch (err) {
    if (tty) process.stderr.write('\n');
    process.stderr.write(`redis-sync verify: ${(err as Error).message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', interrupt);
    source?.close();
    destination?.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, file, ...rest] = argv;
  if (command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (command === 'verify') return verifyCommand(argv.slice(1));
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
