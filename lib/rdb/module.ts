import { RdbError } from './errors';
import type { RdbReads } from './reads';

const NAME_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const MODULE_OPCODE_EOF = 0;
const MODULE_OPCODE_SINT = 1;
const MODULE_OPCODE_UINT = 2;
const MODULE_OPCODE_FLOAT = 3;
const MODULE_OPCODE_DOUBLE = 4;
const MODULE_OPCODE_STRING = 5;

/** A module type id packs a 9-character name (6 bits a character) above a 10-bit version. */
export function moduleNameFromId(id: bigint): string {
  let rest = id >> 10n;
  let name = '';
  for (let j = 0; j < 9; j++) {
    name = NAME_CHARSET[Number(rest & 63n)] + name;
    rest >>= 6n;
  }
  return name;
}

/**
 * Walks a self-describing (RDB_TYPE_MODULE_2 / MODULE_AUX) module value up to its EOF
 * opcode. Without the module loaded its meaning is unknown, but its extent is not, so the
 * bytes can be carried to a destination that has the module.
 */
export function decodeModuleValue(r: RdbReads, valueAt: number): void {
  for (;;) {
    const at = r.offset;
    const op = r.len();
    switch (op) {
      case MODULE_OPCODE_EOF:
        return;
      case MODULE_OPCODE_SINT:
      case MODULE_OPCODE_UINT:
        r.lenBig();
        break;
      case MODULE_OPCODE_FLOAT:
        r.bytes(4);
        break;
      case MODULE_OPCODE_DOUBLE:
        r.bytes(8);
        break;
      case MODULE_OPCODE_STRING:
        r.str();
        break;
      default:
        throw new RdbError('BAD_ENCODING', at, `unknown module value opcode ${op} in the module value at byte ${valueAt}`);
    }
  }
}
