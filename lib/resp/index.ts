export {
  RespParser,
  RespMap,
  RespSet,
  RespPush,
  RespVerbatim,
  RespAttributed,
  type RespValue,
  type RespParserOptions,
} from './parser';
export { encodeCommand, encodeCommands, CommandWriter, type CommandArg } from './encoder';
export { RespError, RespProtocolError, type RespProtocolErrorCode } from './errors';
