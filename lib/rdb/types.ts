/** Object type bytes of the RDB format (rdb.h), as they precede a key. */
export const RdbType = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE_PRE_GA: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  HASH_METADATA_PRE_GA: 22,
  HASH_LISTPACK_EX_PRE_GA: 23,
  HASH_METADATA: 24,
  HASH_LISTPACK_EX: 25,
} as const;

export type ValueKind = 'string' | 'list' | 'set' | 'zset' | 'hash' | 'stream' | 'module';

/** A stream entry or PEL id, as Redis prints it: "<ms>-<seq>" (both unsigned 64-bit). */
export type StreamId = string;

export interface StreamEntry {
  id: StreamId;
  /** field, value, field, value … in stored order */
  fields: Buffer[];
}

export interface StreamPendingEntry {
  id: StreamId;
  deliveryTimeMs: number;
  deliveryCount: number;
}

export interface StreamConsumer {
  name: Buffer;
  /** RDB 10+ stores only one time, the seen-time; 7.2+ (RDB 11+) also the active-time. */
  seenTimeMs: number;
  activeTimeMs: number | null;
  pending: StreamId[];
}

export interface StreamGroup {
  name: Buffer;
  lastDeliveredId: StreamId;
  entriesRead: number | null;
  pending: StreamPendingEntry[];
  consumers: StreamConsumer[];
}

export interface StreamValue {
  entries: StreamEntry[];
  length: number;
  lastId: StreamId;
  firstId: StreamId | null;
  maxDeletedId: StreamId | null;
  entriesAdded: number | null;
  groups: StreamGroup[];
}

export interface ModuleValue {
  /** 64-bit module type id: 54 bits of 9-char name, 10 bits of encoding version. */
  moduleId: bigint;
  moduleName: string;
  encodingVersion: number;
  /** The serialized module value (the opcode stream after the id, through EOF). */
  raw: Buffer;
}

/** A hash field with its own TTL (7.4+), absolute ms. */
export interface HashFieldExpire {
  field: Buffer;
  expireMs: number;
}

export type KeyValue =
  | { type: 'string'; value: Buffer }
  | { type: 'list'; value: Buffer[] }
  | { type: 'set'; value: Buffer[] }
  | { type: 'zset'; value: Array<[member: Buffer, score: number]> }
  | { type: 'hash'; value: Array<[field: Buffer, value: Buffer]>; fieldExpires: HashFieldExpire[] }
  | { type: 'stream'; value: StreamValue }
  | { type: 'module'; value: ModuleValue };
