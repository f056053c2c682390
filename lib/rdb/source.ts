import { createReadStream } from 'node:fs';
import type { RdbEvent } from './events';
import { RdbParser, type RdbParserOptions } from './parser';

/** Parses an RDB from any byte stream (a file, a socket) as it arrives. */
export async function* parseRdbStream(input: AsyncIterable<Buffer>, opts?: RdbParserOptions): AsyncGenerator<RdbEvent> {
  const parser = new RdbParser(opts);
  for await (const chunk of input) yield* parser.push(chunk);
  yield* parser.finish();
}

export function parseRdbFile(path: string, opts?: RdbParserOptions): AsyncGenerator<RdbEvent> {
  return parseRdbStream(createReadStream(path, { highWaterMark: 256 * 1024 }), opts);
}
