/** Values read from replies (CONFIG GET, bulk strings) and numbers written for messages. */
import type { RespValue } from '../resp/parser';

/** CONFIG GET name as a string; undefined when the server has no such setting. */
export function configValue(reply: RespValue, name: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    if (text(reply[i]).toLowerCase() === name) return text(reply[i + 1]);
  }
  return undefined;
}

export function text(v: RespValue): string {
  if (Buffer.isBuffer(v)) return v.toString();
  if (v === null) return '';
  return String(v);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB": the units INFO's *_human fields use, with one decimal. */
export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** Seconds for a message: "0.4 s", "75 s", "2.5 h". */
export function seconds(s: number): string {
  if (!Number.isFinite(s)) return 'unbounded';
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.round(s)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}
