import type { VerifyOptions } from './verifier';

/** "10%" → a share of the keys; "5000" → a number of them; empty → every key. Throws on anything else. */
export function parseSample(text: string | undefined): VerifyOptions['sample'] {
  const t = (text ?? '').trim();
  if (t === '') return undefined;
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct !== null && Number(pct[1]) > 0 && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^\d+$/.test(t) && Number(t) > 0) return { count: Number(t) };
  throw new Error(`sample: "${t}" is neither a share like 10% nor a number of keys`);
}
