/**
 * What every node's editor script and help must hold, checked on the built .html of each type
 * in package.json and the en-US files beside it (test/browser.test.ts shows the dialogs and
 * the help in a real editor).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { editorDefinition, messages, type PortLabels } from './support/node-red';

const ROOT = path.resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> }; repository: { url: string } };
const TYPES = Object.keys(pkg['node-red'].nodes);
/** The repository's page on GitHub, where the help links to the README's sections. */
const REPOSITORY = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
/** The anchors GitHub gives the README's headings: lower case, punctuation dropped, spaces as hyphens. */
const README_ANCHORS = new Set(
  [...readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => m[1].toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')),
);
/** The sections of Node-RED's help style guide, in its order; the help sidebar folds each <h3>. */
const HELP_SECTIONS = ['Inputs', 'Outputs', 'Details', 'References'];

const built = (type: string, ...parts: string[]): string => readFileSync(path.join(ROOT, path.dirname(pkg['node-red'].nodes[type]), ...parts), 'utf8');

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

    it(`${type}: every text of its dialog and every port label comes from its en-US catalog`, () => {
      const t = messages(type);
      const keys = [...built(type, `${type}.html`).matchAll(/data-i18n="(?:\[\w+\])?([\w.-]+)"/g)].map((m) => m[1]);
      assert.ok(keys.length > 0);
      for (const key of keys) t(key);
      const def = editorDefinition(type);
      // port labels as the editor asks for them, for the ports a node of the type can have
      const ports: Array<[string, number, PortLabels | undefined]> = [
        ['input', def.inputs ?? 0, def.inputLabels],
        ['output', Math.max(def.outputs ?? 0, 'outputs' in def.defaults ? 2 : 0), def.outputLabels],
      ];
      for (const [kind, count, labels] of ports) {
        if (count === 0) continue;
        assert.equal(typeof labels, 'function', `${type}: its ${kind} labels are not looked up in the catalog`);
        for (let i = 0; i < count; i++) {
          const translated: string[] = [];
          const node = { _: (key: string, substitutions?: Record<string, unknown>): string => translated[translated.push(t(key, substitutions)) - 1] };
          const label = (labels as (this: object, i: number) => string).call(node, i);
          assert.ok(label !== '' && translated.includes(label), `${type}: ${kind} ${i + 1} is labelled "${label}", not with a message of the catalog`);
        }
      }
    });

    it(`${type}: its help is in locales/en-US/${type}.html, in Node-RED's help style, and links to its README section`, () => {
      assert.doesNotMatch(built(type, `${type}.html`), /data-help-name/, 'the help lives in the locale file, once');
      const file = built(type, 'locales', 'en-US', `${type}.html`);
      const help = new RegExp(`^<script type="text/html" data-help-name="${type}">([\\s\\S]*)</script>\\s*$`).exec(file)?.[1];
      assert.ok(help !== undefined, 'the file holds its <script type="text/html" data-help-name> and nothing else');
      // the palette's tooltip shows the first paragraph; resources/editor.css lets code wrap from it on
      assert.match(help, /^\s*<p class="redis-sync-help">/, 'it opens with its summary, <p class="redis-sync-help">');
      const sections = [...help.matchAll(/<h(\d)>([^<]*)<\/h\1>/g)].map((m) => (m[1] === '3' ? m[2] : `<h${m[1]}> ${m[2]}`));
      assert.deepEqual(sections, HELP_SECTIONS.filter((s) => sections.includes(s)), `its sections, as <h3>: ${HELP_SECTIONS.join(', ')}`);
      assert.ok(sections.includes('Details') && sections.includes('References'));
      for (const list of help.matchAll(/<dl\b[^>]*>/g)) assert.equal(list[0], '<dl class="message-properties">');
      const readme = [...help.matchAll(/href="([^"]+)"/g)].map((m) => m[1]).filter((href) => href.startsWith(REPOSITORY));
      assert.ok(readme.includes(`${REPOSITORY}#${type}`), `no link to ${REPOSITORY}#${type}`);
      for (const link of readme) assert.ok(README_ANCHORS.has(link.slice(link.indexOf('#') + 1)), `${link}: the README has no such heading`);
    });
  }
});
