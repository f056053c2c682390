export { RdbError, type RdbErrorCode } from './errors';
export type { RdbEvent, RdbKey } from './events';
export { RdbParser, type RdbParserOptions } from './parser';
export { parseRdbStream, parseRdbFile } from './source';
export { buildDumpPayload, parseDumpPayload } from './dump';
export { RdbJsonBuilder, jsonBytes, type RdbJson } from './json';
export { RdbType } from './types';
export { rdbVersionOfServer } from './versions';
export type * from './types';
