export { compareKeys, DEFAULT_TTL_TOLERANCE_MS, type CompareOptions, type KeyDifference } from './compare';
export { KeyMapping, parseRenames, type RenameRule } from './mapping';
export { VerifySide, type DbKey, type KeyRead } from './side';
export { DEFAULT_RATE, DEFAULT_ROUNDS, verify, type DifferenceSample, type VerifyOptions, type VerifyProgress, type VerifyReport } from './verifier';
export type { DifferenceReason } from './values';
export { parseSample } from './sample';
