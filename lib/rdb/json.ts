import { slotOf } from '../cluster/slots';
import type { RdbEvent, RdbKey } from './events';
import { decodeRawValue, isDecoded } from './parser';
import type { KeyValue } from './types';

type Decoded = RdbKey & KeyValue;
import type { StreamGroup, StreamValue } from './types';

/**
 * The logical content of an RDB as JSON, in the schema of the fixture files under
 * shared/fixtures/rdb (without `encoding`, which a parser cannot know). It is what
 * `redis-sync rdb2json` prints.
 */
export interface RdbJson {
  redis_version: string | null;
  rdb_version: number;
  databases: Record<string, Record<string, JsonKey>>;
  functions: JsonFunction[];
}

export interface JsonKey {
  type: string;
  expire_ms: number | null;
  value: unknown;
  field_expire_ms?: Record<string, number>;
  lfu_freq?: number;
  lru_idle_s?: number;
  slot?: number;
}

export interface JsonFunction {
  library_name: string;
  engine: string;
  code: string;
  functions: Array<{ name: string; flags: string[] }>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as text when they are valid UTF-8 (and do not look like the escape), else "b64:…". */
export function jsonBytes(b: Buffer): string {
  try {
    const s = utf8.decode(b);
    if (!s.startsWith('b64:')) return s;
  } catch {
    // not UTF-8: fall through to base64
  }
  return 'b64:' + b.toString('base64');
}

/** Redis 7's shortest round-trip score text. */
export function scoreText(n: number): string {
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  return String(n);
}

function compareBytes(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** Builds the document from parser events; chunks of a big key are merged back into one. */
export class RdbJsonBuilder {
  private readonly doc: RdbJson = { redis_version: null, rdb_version: 0, databases: {}, functions: [] };
  private hasSlotInfo = false;
  /** Collected parts of keys that came in chunks, by db + key. */
  private readonly partial = new Map<string, Decoded[]>();

  add(ev: RdbEvent): void {
    switch (ev.kind) {
      case 'header':
        this.doc.rdb_version = ev.version;
        return;
      case 'aux':
        if (ev.name.toString('latin1') === 'redis-ver') this.doc.redis_version = ev.value.toString('latin1');
        return;
      case 'slot-info':
        this.hasSlotInfo = true;
        return;
      case 'function':
        this.doc.functions.push(describeFunction(ev.code.toString('utf8')));
        return;
      case 'key':
        this.addKey(ev);
        return;
      default:
        return;
    }
  }

  result(): RdbJson {
    this.doc.functions.sort((a, b) => (a.library_name < b.library_name ? -1 : a.library_name > b.library_name ? 1 : 0));
    return this.doc;
  }

  private addKey(ev: RdbKey): void {
    if (!isDecoded(ev)) {
      this.put(ev, [{ ...ev, ...decodeRawValue(ev.rdbType, ev.raw as Buffer, this.doc.rdb_version) }]);
      return;
    }
    if (ev.chunk === null) {
      this.put(ev, [ev]);
      return;
    }
    const id = `${ev.db}:${ev.key.toString('hex')}`;
    const parts: Decoded[] = this.partial.get(id) ?? [];
    parts.push(ev);
    if (!ev.chunk.last) {
      this.partial.set(id, parts);
      return;
    }
    this.partial.delete(id);
    this.put(ev, parts);
  }

  private put(ev: RdbKey, parts: Decoded[]): void {
    const db = (this.doc.databases[String(ev.db)] ??= {});
    const out: JsonKey = { type: ev.type, expire_ms: ev.expireMs, value: jsonValue(parts) };
    if (ev.type === 'hash' && this.doc.rdb_version >= 12) {
      const fe: Record<string, number> = {};
      for (const p of parts) if (p.type === 'hash') for (const f of p.fieldExpires) fe[jsonBytes(f.field)] = f.expireMs;
      out.field_expire_ms = fe;
    }
    if (ev.lfuFreq !== null) out.lfu_freq = ev.lfuFreq;
    if (ev.idleSeconds !== null) out.lru_idle_s = ev.idleSeconds;
    if (this.hasSlotInfo) out.slot = slotOf(ev.key);
    db[jsonBytes(ev.key)] = out;
  }
}

function jsonValue(parts: Decoded[]): unknown {
  const first = parts[0];
  switch (first.type) {
    case 'string':
      return jsonBytes(parts.length === 1 ? first.value : Buffer.concat(parts.map((p) => p.value as Buffer)));
    case 'list':
      return parts.flatMap((p) => (p.value as Buffer[]).map(jsonBytes));
    case 'set':
      return parts
        .flatMap((p) => p.value as Buffer[])
        .sort(compareBytes)
        .map(jsonBytes);
    case 'zset':
      return parts
        .flatMap((p) => p.value as Array<[Buffer, number]>)
        .sort((a, b) => a[1] - b[1] || compareBytes(a[0], b[0]))
        .map(([m, s]) => [jsonBytes(m), scoreText(s)]);
    case 'hash': {
      const o: Record<string, string> = {};
      for (const p of parts) for (const [f, v] of p.value as Array<[Buffer, Buffer]>) o[jsonBytes(f)] = jsonBytes(v);
      return o;
    }
    case 'stream': {
      const last = parts[parts.length - 1].value as StreamValue;
      return jsonStream(
        parts.flatMap((p) => (p.value as StreamValue).entries),
        last,
      );
    }
    default: {
      const m = first.value as { moduleName: string; encodingVersion: number; raw: Buffer };
      return { module: m.moduleName, encoding_version: m.encodingVersion, raw: 'b64:' + m.raw.toString('base64') };
    }
  }
}

function jsonStream(entries: StreamValue['entries'], s: StreamValue): unknown {
  return {
    length: s.length,
    entries: entries.map((e) => [e.id, e.fields.map(jsonBytes)]),
    last_id: s.lastId,
    max_deleted_entry_id: s.maxDeletedId,
    entries_added: s.entriesAdded,
    first_id: s.firstId,
    groups: s.groups
      .slice()
      .sort((a, b) => compareBytes(a.name, b.name))
      .map(jsonGroup),
  };
}

function jsonGroup(g: StreamGroup): unknown {
  const owner = new Map<string, string>();
  for (const c of g.consumers) for (const id of c.pending) owner.set(id, jsonBytes(c.name));
  return {
    name: jsonBytes(g.name),
    last_delivered_id: g.lastDeliveredId,
    entries_read: g.entriesRead,
    pending: g.pending.map((p) => [p.id, owner.get(p.id) ?? null, p.deliveryTimeMs, p.deliveryCount]),
    consumers: g.consumers
      .slice()
      .sort((a, b) => compareBytes(a.name, b.name))
      .map((c) => ({ name: jsonBytes(c.name), seen_time_ms: c.seenTimeMs, active_time_ms: c.activeTimeMs, pending: c.pending })),
  };
}

/**
 * A function library stores only its code; its name, engine and functions are declared in
 * it: the `#!<engine> name=<lib>` shebang and the `redis.register_function` calls.
 */
export function describeFunction(code: string): JsonFunction {
  const shebang = /^#!(\S+)([^\n]*)/.exec(code);
  const name = shebang ? /(?:^|\s)name=(\S+)/.exec(shebang[2]) : null;
  const functions: JsonFunction['functions'] = [];
  const call = /redis\.register_function\s*([({])/g;
  for (let m = call.exec(code); m !== null; m = call.exec(code)) {
    const rest = code.slice(m.index + m[0].length);
    if (m[1] === '(') {
      const arg = /^\s*(['"])((?:\\.|(?!\1).)*)\1/.exec(rest);
      if (arg) functions.push({ name: arg[2], flags: [] });
      continue;
    }
    const table = rest.slice(0, tableEnd(rest));
    const fname = /function_name\s*=\s*(['"])((?:\\.|(?!\1).)*)\1/.exec(table);
    const flags = /flags\s*=\s*\{([^}]*)\}/.exec(table);
    if (fname) {
      const list = flags ? [...flags[1].matchAll(/(['"])((?:\\.|(?!\1).)*)\1/g)].map((f) => f[2]) : [];
      functions.push({ name: fname[2], flags: list });
    }
  }
  return { library_name: name ? name[1] : '', engine: shebang ? shebang[1].toUpperCase() : '', code, functions };
}

/** Index of the brace that closes a Lua table constructor, skipping string literals. */
function tableEnd(s: string): number {
  let depth = 1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"') {
      for (i++; i < s.length && s[i] !== c; i++) if (s[i] === '\\') i++;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return s.length;
}
