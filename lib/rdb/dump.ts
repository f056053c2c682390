import type { BulkWriter } from '../resp/encoder';
import { Crc64 } from './crc64';
import { RdbError } from './errors';
import type { RdbKey } from './events';
import type { KeyValue } from './types';
import { RdbParser } from './parser';

/**
 * A DUMP payload (what RESTORE takes): the type byte, the serialized value exactly as the
 * RDB holds it, the 2-byte RDB version the value is encoded for, and a CRC64 of all that.
 */
export function buildDumpPayload(rdbType: number, raw: Buffer, rdbVersion: number): Buffer {
  const payload = new DumpPayload(rdbType, raw, rdbVersion);
  const out = Buffer.allocUnsafe(payload.byteLength);
  payload.writeTo(out, 0);
  return out;
}

/**
 * A DUMP payload as a command argument that writes itself into the command's output, so a
 * snapshot key's value is copied once (into the pipeline) instead of twice.
 */
export class DumpPayload implements BulkWriter {
  readonly byteLength: number;

  constructor(
    private readonly rdbType: number,
    private readonly raw: Buffer,
    private readonly rdbVersion: number,
  ) {
    this.byteLength = 1 + raw.length + 10;
  }

  writeTo(buf: Buffer, off: number): void {
    const n = this.raw.length;
    buf[off] = this.rdbType;
    buf.set(this.raw, off + 1);
    buf.writeUInt16LE(this.rdbVersion, off + 1 + n);
    const crc = new Crc64();
    crc.update(buf, off, off + n + 3);
    crc.writeDigest(buf, off + n + 3);
  }
}

/** Decodes a DUMP payload (checksum and version verified) into a key event with an empty key. */
export function parseDumpPayload(payload: Buffer): RdbKey & KeyValue & { rdbVersion: number } {
  if (payload.length < 11) throw new RdbError('TRUNCATED', payload.length, `a DUMP payload has at least 11 bytes, this one ${payload.length}`);
  const body = payload.subarray(0, payload.length - 10);
  const stored = payload.subarray(payload.length - 8);
  const crc = new Crc64();
  crc.update(payload, 0, payload.length - 8);
  if (!stored.every((b) => b === 0) && !crc.digest().equals(stored)) {
    throw new RdbError('BAD_CHECKSUM', payload.length - 8, `DUMP payload CRC64 ${stored.toString('hex')} does not match computed ${crc.digest().toString('hex')}`);
  }
  const rdbVersion = payload.readUInt16LE(payload.length - 10);
  if (rdbVersion < 1 || rdbVersion > 12) throw new RdbError('BAD_VERSION', payload.length - 10, `DUMP payload RDB version ${rdbVersion} is not one of 1 to 12`);
  const key = RdbParser.forDumpValue(rdbVersion).parseValue(body[0], body.subarray(1)) as RdbKey & KeyValue;
  return { ...key, rdbVersion };
}
