import type { KeyValue, ValueKind } from './types';

/**
 * One key of the snapshot. A key whose serialized value is larger than the parser's
 * `bigKeyBytes` comes out as several events with `chunk` set, each holding a slice of the
 * elements (or of the string), in order; only the last chunk of a stream holds its metadata
 * and consumer groups. Buffers are slices of the bytes that were pushed: never mutate
 * a pushed chunk afterwards. `value` is null for a whole key parsed with decodeValues off.
 */
export type RdbKey = (KeyValue | { type: ValueKind; value: null }) & {
  kind: 'key';
  db: number;
  key: Buffer;
  /** The RDB object type byte (see RdbType). */
  rdbType: number;
  /** Absolute expire time in ms since the epoch, or null when the key does not expire. */
  expireMs: number | null;
  /** LRU idle time in seconds (IDLE opcode), when the source runs an LRU policy. */
  idleSeconds: number | null;
  /** LFU counter (FREQ opcode), when the source runs an LFU policy. */
  lfuFreq: number | null;
  /**
   * The serialized value as stored after the key: with `rdbType` and the RDB version it is
   * a DUMP payload (see buildDumpPayload). Null for a chunked key.
   */
  raw: Buffer | null;
  /** Set only for a key that comes out in several parts. */
  chunk: { index: number; last: boolean } | null;
  /** Absolute byte offset of the key's type byte in the RDB stream. */
  offset: number;
};

export type RdbEvent =
  | { kind: 'header'; version: number }
  | { kind: 'aux'; name: Buffer; value: Buffer }
  | { kind: 'resizedb'; db: number; size: number; expiresSize: number }
  | { kind: 'slot-info'; slot: number; size: number; expiresSize: number }
  /** A function library (7.0+). Pre-GA (7.0 RC) libraries are converted to the GA code form. */
  | { kind: 'function'; code: Buffer }
  | { kind: 'module-aux'; moduleId: bigint; moduleName: string; when: number; raw: Buffer }
  | RdbKey
  /**
   * The snapshot ended; `checksum` is the stored CRC64 (verified), null when absent or
   * disabled; `emptyKeysSkipped` counts the keys left out as Redis leaves them out (see
   * RdbParser.emptyKeysSkipped).
   */
  | { kind: 'end'; checksum: Buffer | null; size: number; emptyKeysSkipped: number };
