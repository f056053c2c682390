/**
 * What every node's editor script must hold, checked on the built .html of each type in
 * package.json (test/browser.test.ts shows the dialogs in a real editor).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { editorDefinition } from './support/node-red';

const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const TYPES = Object.keys(pkg['node-red'].nodes);

describe('the editor scripts', () => {
  for (const type of TYPES) {
    it(`${type}: every validate takes (value, opt), so that the editor shows the message it returns`, () => {
      const def = editorDefinition(type);
      const properties = { ...def.defaults, ...def.credentials };
      for (const [name, property] of Object.entries(properties)) {
        // Node-RED takes a returned string as "invalid" only from a two-parameter validate
        if (property.validate) assert.equal(property.validate.length, 2, `${type}.${name}: validate takes ${property.validate.length} parameter(s)`);
      }
    });
  }
});
