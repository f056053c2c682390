/**
 * Parses a replication-like stream (SET key:<i> <100-byte value> as RESP arrays, in 64 KB
 * chunks) with our RespParser and with redis-parser (what ioredis uses), in the same process,
 * alternating rounds so both see the same machine state.
 *
 *   npm run bench:resp [-- <commands> <chunkBytes> <rounds>]
 */
import { Buffer } from 'node:buffer';
import { RespParser, encodeCommands, type CommandArg } from '../lib/resp';

// redis-parser ships no types; this is the part of its API the bench uses.
interface RedisParser {
  execute(chunk: Buffer): void;
}
type RedisParserClass = new (options: {
  returnBuffers: boolean;
  returnReply: (reply: unknown) => void;
  returnError: (err: Error) => void;
  returnFatalError: (err: Error) => void;
}) => RedisParser;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const JavascriptRedisParser = require('redis-parser') as RedisParserClass;

const COMMANDS = Number(process.argv[2] ?? 500_000);
const CHUNK = Number(process.argv[3] ?? 64 * 1024);
const ROUNDS = Number(process.argv[4] ?? 7);
const WARMUP = 3;

function buildStream(): Buffer {
  const value = Buffer.alloc(100, 'v');
  const commands: CommandArg[][] = [];
  for (let i = 0; i < COMMANDS; i++) commands.push(['SET', `key:${i}`, value]);
  return encodeCommands(commands);
}

function split(stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  // Copies, not views, so each chunk is its own allocation as a socket would deliver it.
  for (let off = 0; off < stream.length; off += CHUNK) chunks.push(Buffer.from(stream.subarray(off, off + CHUNK)));
  return chunks;
}

function runOurs(chunks: Buffer[]): number {
  const parser = new RespParser();
  let count = 0;
  for (const chunk of chunks) {
    parser.push(chunk);
    while (parser.next() !== undefined) count++;
  }
  return count;
}

function runTheirs(chunks: Buffer[]): number {
  let count = 0;
  const parser = new JavascriptRedisParser({
    returnBuffers: true,
    returnReply: () => count++,
    returnError: (err) => {
      throw err;
    },
    returnFatalError: (err) => {
      throw err;
    },
  });
  for (const chunk of chunks) parser.execute(chunk);
  return count;
}

function time(run: (chunks: Buffer[]) => number, chunks: Buffer[]): number {
  const t0 = process.hrtime.bigint();
  const count = run(chunks);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (count !== COMMANDS) throw new Error(`parsed ${count} commands, expected ${COMMANDS}`);
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function main(): void {
  const stream = buildStream();
  const chunks = split(stream);
  const mb = stream.length / (1024 * 1024);

  // Our own sanity check that sizes add up to the stream, since a replica acks this sum.
  const check = new RespParser();
  let bytes = 0;
  for (const chunk of chunks) {
    check.push(chunk);
    while (check.next() !== undefined) bytes += check.lastSize;
  }
  if (bytes !== stream.length) throw new Error(`sizes sum to ${bytes}, stream has ${stream.length} bytes`);

  console.log(`${COMMANDS} commands, ${mb.toFixed(1)} MB, ${chunks.length} chunks of ${CHUNK} bytes, node ${process.version}`);
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const a = time(runOurs, chunks);
    const b = time(runTheirs, chunks);
    if (round >= WARMUP) {
      ours.push(a);
      theirs.push(b);
    }
  }
  const report = (name: string, seconds: number[]): number => {
    const s = median(seconds);
    console.log(
      `${name.padEnd(14)} ${(COMMANDS / s / 1e6).toFixed(2)} M commands/s  ${(mb / s).toFixed(0)} MB/s  (median of ${seconds.length}, best ${(COMMANDS / Math.min(...seconds) / 1e6).toFixed(2)} M/s)`,
    );
    return s;
  };
  const a = report('RespParser', ours);
  const b = report('redis-parser', theirs);
  console.log(`ours/theirs: ${(b / a).toFixed(2)}x`);
}

main();
