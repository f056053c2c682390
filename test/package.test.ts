/**
 * The rules of Node-RED's package validator, checked offline against this package.
 *
 * The validator is the npm package `node-red-dev` (`node-red-dev validate`, version 0.1.6 read
 * for this file). Its rules live in three files of its source, cited per rule below:
 *   src/libs/checkpackage.js  P01 license, P03 repository or bugs, P04 name, P05 keyword,
 *                             P06 node-red.version, P07 engines.node, P08 similar names
 *   src/libs/checknodes.js    getNodeDefinitions() (how the .html is parsed), N01 unique
 *                             type names, N02 an example per node
 *   src/libs/checkdeps.js     D01 dependency count, D02 known-bad packages, D03 up to date
 * It validates the package directory as published: the .html it parses is the one beside
 * each built .js named in package.json (`dist/nodes/…`), so `npm run build` comes first (as
 * in `npm test`).
 *
 * Not here, because they need the network beyond the npm registry, or change with every
 * upstream release (run `node-red-dev validate` by hand where catalogue.nodered.org is
 * reachable):
 *   P08  names similar to ours in the flow library catalogue (catalogue.nodered.org);
 *   N01  our node types against every type in that catalogue: only the offline part is
 *        checked below (no duplicates, none of Node-RED's core types, our `redis-` prefix);
 *   D03  every dependency at its latest version on npm (npm-check against the registry).
 * P06 and P07 compare with the current Node-RED release on npm: the test asks the registry
 * (`npm view node-red`) and, when that fails (no network), uses KNOWN_NODE_RED below,
 * recorded from the registry; it says which it used.
 *
 * Each rule is a function returning the problems it finds. The first block runs every rule
 * on this package (none may find a problem); the second runs each rule on a copy of the
 * package broken in the way the rule is about, and expects it to fail, so no rule passes
 * vacuously.
 *
 * The last block does what a release and a user do: `npm pack` in a clean checkout (no dist/,
 * so the prepack script must build it), the tarball's contents checked, then the tarball
 * installed into a fresh Node-RED user directory and loaded by a real Node-RED process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { NodeRedProcess } from './support/node-red-process';

const ROOT = resolve(__dirname, '..');

/**
 * The current Node-RED release as the npm registry reported it on 2025-11-25
 * (`npm view node-red dist-tags engines`): used only when the registry cannot be asked.
 * The validator takes the `latest` tag and every tag containing "maintenance".
 */
const KNOWN_NODE_RED: NodeRedRelease = { supported: { latest: '5.0.7' }, latestEngines: '>=22.9', from: 'the list recorded in test/package.test.ts (2025-11-25)' };

/** The validator's list of packages known to break Node-RED (src/badpackages.json). */
const BAD_PACKAGES: Record<string, string> = { 'agent-base': '<6.0.0' };

/** The validator's limit of production dependencies (D01, the 95th percentile of the catalogue in 2021). */
const MAX_DEPENDENCIES = 6;

// The semver and package-name checks Node-RED itself uses (its registry loads modules with
// them), so a range means here what it means to the runtime.
const nodeRedRequire = createRequire(require.resolve('node-red/package.json'));
const registryRequire = createRequire(nodeRedRequire.resolve('@node-red/registry/package.json'));
const semver = registryRequire('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
  validRange(range: string): string | null;
};
const validateName = registryRequire('validate-npm-package-name') as (name: string) => { validForNewPackages: boolean; errors?: string[]; warnings?: string[] };

interface PackageJson {
  name?: string;
  version?: string;
  license?: unknown;
  repository?: unknown;
  bugs?: unknown;
  keywords?: unknown;
  engines?: { node?: string };
  files?: string[];
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  'node-red'?: { version?: string; nodes?: Record<string, string> };
}

interface NodeRedRelease {
  /** dist-tag → version, for the tags the validator counts as supported. */
  supported: Record<string, string>;
  /** engines.node of the latest release. */
  latestEngines: string;
  from: string;
}

type Rule = (dir: string) => string[];

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

// ---- the .html as the validator reads it (checknodes.js, getNodeDefinitions) ----

/** The validator's pattern: only <script> tags with type="text/javascript" are read. */
const SCRIPT = /<script.+?type=['"]text\/javascript['"].*?>([\S\s]*?)<\/script>/gi;

/** What a registerType call declares, as far as the validator records it. */
interface TypeDef {
  type: string;
  file: string;
  /** Property name → its value when it is a literal (acorn's `Literal`), or NOT_LITERAL. */
  props: Map<string, unknown>;
}

const NOT_LITERAL = Symbol('not a literal');

interface HtmlParse {
  defs: TypeDef[];
  /** The validator's error codes (icon-not-inline …) and parse failures, with where. */
  errors: string[];
}

/**
 * An expression as acorn's `Literal` (what the validator requires): strings, numbers,
 * booleans, null, regexes, bigints, also in parentheses (acorn drops them); not template
 * strings, not `-1`, not names or calls.
 */
function literalValue(expr: ts.Expression): unknown {
  let e = expr;
  while (ts.isParenthesizedExpression(e)) e = e.expression;
  if (ts.isStringLiteral(e)) return e.text;
  if (ts.isNumericLiteral(e)) return Number(e.text);
  if (ts.isBigIntLiteral(e)) return e.text;
  if (ts.isRegularExpressionLiteral(e)) return e.text;
  if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (e.kind === ts.SyntaxKind.NullKeyword) return null;
  return NOT_LITERAL;
}

/** Properties whose value the validator requires to be a literal, and its error code for each. */
const LITERAL_PROPS = ['category', 'color', 'icon', 'inputs', 'outputs'];
/** Properties the validator requires to be inline object literals. */
const INLINE_OBJECTS = ['defaults', 'credentials'];

function parseNodeHtml(file: string): HtmlParse {
  const content = readFileSync(file, 'utf8');
  const parts = [...content.matchAll(SCRIPT)].map((m) => m[1]);
  const defs: TypeDef[] = [];
  const errors: string[] = [];
  if (parts.length === 0) errors.push(`${file}: no <script type="text/javascript"> section (the validator reads no other)`);
  for (const part of parts) {
    const syntax = ts.transpileModule(part, { fileName: 'node.js', reportDiagnostics: true, compilerOptions: { allowJs: true } }).diagnostics ?? [];
    for (const d of syntax) errors.push(`${file}: parse: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    const sf = ts.createSourceFile('node.js', part, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === 'registerType') {
        registerType(node, file, defs, errors);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  if (defs.length === 0 && errors.length === 0) errors.push(`${file}: no type definitions found`);
  return { defs, errors };
}

function registerType(call: ts.CallExpression, file: string, defs: TypeDef[], errors: string[]): void {
  const [typeArg, defArg] = call.arguments;
  const at = `${file}: RED.nodes.registerType(${typeArg?.getText() ?? ''}, …)`;
  const type = typeArg === undefined ? NOT_LITERAL : literalValue(typeArg);
  if (type === NOT_LITERAL) {
    errors.push(`${at}: non-literal: the type name must be a literal`);
    return;
  }
  let obj: ts.Expression | undefined = defArg;
  while (obj !== undefined && ts.isParenthesizedExpression(obj)) obj = obj.expression;
  if (obj === undefined || !ts.isObjectLiteralExpression(obj)) {
    errors.push(`${at}: non-objectexpression: the definition must be an object literal`);
    return;
  }
  const def: TypeDef = { type: String(type), file, props: new Map() };
  defs.push(def);
  for (const prop of obj.properties) {
    if (ts.isSpreadAssignment(prop)) {
      // acorn's SpreadElement has no key: the validator throws on it and skips the whole file
      errors.push(`${at}: parse: a spread (...${prop.expression.getText()}) in the definition`);
      continue;
    }
    // the validator reads `key.name`: identifier keys only ("icon": … is not seen at all)
    if (prop.name === undefined || !ts.isIdentifier(prop.name)) continue;
    const name = prop.name.text;
    const value = ts.isPropertyAssignment(prop) ? prop.initializer : undefined;
    if (LITERAL_PROPS.includes(name)) {
      const v = value === undefined ? NOT_LITERAL : literalValue(value);
      def.props.set(name, v);
      if (v === NOT_LITERAL) errors.push(`${at}: ${name}-not-inline: ${name} must be a plain literal, not ${prop.getText()}`);
    } else if (INLINE_OBJECTS.includes(name)) {
      let o: ts.Expression | undefined = value;
      while (o !== undefined && ts.isParenthesizedExpression(o)) o = o.expression;
      if (o === undefined || !ts.isObjectLiteralExpression(o)) errors.push(`${at}: ${name}-not-inline: ${name} must be an object literal`);
      else if (o.properties.some((p) => ts.isSpreadAssignment(p))) errors.push(`${at}: parse: a spread in ${name}`);
      def.props.set(name, true);
    }
  }
}

/** The .html the validator reads for each entry of node-red.nodes: the .js path with ".js" replaced once. */
function nodeHtmlFiles(dir: string): Array<{ set: string; js: string; html: string }> {
  const nodes = readPackage(dir)['node-red']?.nodes ?? {};
  return Object.entries(nodes).map(([set, js]) => ({ set, js: join(dir, js), html: join(dir, js.replace('.js', '.html')) }));
}

function allDefs(dir: string): { defs: TypeDef[]; errors: string[] } {
  const defs: TypeDef[] = [];
  const errors: string[] = [];
  for (const { html } of nodeHtmlFiles(dir)) {
    if (!existsSync(html)) {
      errors.push(`${html} does not exist`);
      continue;
    }
    const r = parseNodeHtml(html);
    defs.push(...r.defs);
    errors.push(...r.errors);
  }
  return { defs, errors };
}

// ---- the rules ----

/** P01 (checkpackage.js): a license. */
const license: Rule = (dir) => {
  const pkg = readPackage(dir);
  if (typeof pkg.license !== 'string' || pkg.license.trim() === '') return ['package.json has no "license"'];
  return existsSync(join(dir, 'LICENSE')) ? [] : [`license ${pkg.license} is declared but no LICENSE file ships`];
};

/** P03 (checkpackage.js): a repository or a bugs URL/email. */
const repositoryOrBugs: Rule = (dir) => {
  const pkg = readPackage(dir);
  const url = (v: unknown, key: 'url' | 'email'): string | undefined => (typeof v === 'string' ? v : typeof v === 'object' && v !== null ? ((v as Record<string, unknown>)[key] as string | undefined) : undefined);
  const repo = url(pkg.repository, 'url');
  const bugs = url(pkg.bugs, 'url') ?? url(pkg.bugs, 'email');
  if (repo === undefined && bugs === undefined) return ['package.json has neither "repository" nor "bugs"'];
  const problems: string[] = [];
  if (repo !== undefined && !/^(git\+)?(https?|git|ssh):\/\/\S+$|^git@\S+:\S+$|^github:\S+$/.test(repo)) problems.push(`repository URL "${repo}" is not a URL`);
  if (bugs !== undefined && !/^https?:\/\/\S+$|^\S+@\S+$/.test(bugs)) problems.push(`bugs "${bugs}" is neither a URL nor an email`);
  return problems;
};

/**
 * P04 (checkpackage.js): a scoped name, or an unscoped one that does not start with
 * node-red/nodered unless it is node-red-contrib-… (or on the official list). For a package
 * not yet on npm the validator also warns that new packages should be scoped, and then
 * passes P04 by this same test; that warning is not a failure of the rule.
 * Also a valid npm name, by the check Node-RED's own installer uses.
 */
const name: Rule = (dir) => {
  const n = readPackage(dir).name ?? '';
  const problems: string[] = [];
  const valid = validateName(n);
  if (!valid.validForNewPackages) problems.push(`"${n}" is not a valid npm package name: ${[...(valid.errors ?? []), ...(valid.warnings ?? [])].join('; ')}`);
  const scoped = /@[a-z\d][\w-.]+\/[a-z\d][\w-.]*/.test(n);
  if (!scoped && /^(node-red|nodered)(?!-contrib-).*/i.test(n)) problems.push(`"${n}": packages named with the node-red prefix must be node-red-contrib-… (or scoped)`);
  return problems;
};

/** P05 (checkpackage.js): "node-red" among the keywords (the flow library lists only such packages). */
const keyword: Rule = (dir) => {
  const k = readPackage(dir).keywords;
  return Array.isArray(k) && k.includes('node-red') ? [] : ['package.json keywords do not include "node-red"'];
};

/** P06 (checkpackage.js): node-red.version declared, and satisfied by the latest (and any maintenance) Node-RED release. */
function nodeRedVersion(release: NodeRedRelease): Rule {
  return (dir) => {
    const range = readPackage(dir)['node-red']?.version;
    if (range === undefined) return ['package.json has no node-red.version'];
    if (semver.validRange(range) === null) return [`node-red.version "${range}" is not a semver range`];
    return Object.entries(release.supported)
      .filter(([, v]) => !semver.satisfies(v, range))
      .map(([tag, v]) => `node-red.version "${range}" excludes Node-RED ${v} (dist-tag ${tag}, from ${release.from})`);
  };
}

/** Node-RED's loader (@node-red/registry lib/loader.js) refuses a module whose node-red.version the running version does not satisfy. */
function runsOn(versions: Record<string, string>): Rule {
  return (dir) => {
    const range = readPackage(dir)['node-red']?.version ?? '*';
    return Object.entries(versions)
      .filter(([, v]) => !semver.satisfies(v.replace(/(-[1-9A-Za-z-][0-9A-Za-z-.]*)?(\+[0-9A-Za-z-.]+)?$/, ''), range))
      .map(([where, v]) => `node-red.version "${range}" excludes Node-RED ${v} (${where}): the runtime would not load the nodes`);
  };
}

/** P07 (checkpackage.js): engines.node declared, and admitting the lowest Node the latest Node-RED runs on. */
function enginesNode(release: NodeRedRelease): Rule {
  return (dir) => {
    const range = readPackage(dir).engines?.node;
    if (range === undefined) return ['package.json has no engines.node'];
    if (semver.validRange(range) === null) return [`engines.node "${range}" is not a semver range`];
    const lowest = semver.minVersion(release.latestEngines)?.version;
    if (lowest === undefined) return [`the latest Node-RED's engines.node "${release.latestEngines}" has no minimum`];
    return semver.satisfies(lowest, range) ? [] : [`engines.node "${range}" excludes Node ${lowest}, the lowest the latest Node-RED (engines ${release.latestEngines}, from ${release.from}) runs on`];
  };
}

/**
 * checknodes.js: every node's .html (beside the built .js) has a text/javascript script that
 * parses and registers a type; a file that fails is skipped by the validator ("Unable to
 * parse"), so its nodes would escape every node rule. Each set registers the type it is named for.
 */
const htmlParses: Rule = (dir) => {
  const problems: string[] = [];
  const entries = nodeHtmlFiles(dir);
  if (entries.length === 0) problems.push('package.json declares no node-red.nodes');
  for (const { set, js, html } of entries) {
    if (!existsSync(js)) problems.push(`${js} (node-red.nodes.${set}) does not exist: run npm run build`);
    if (!existsSync(html)) {
      problems.push(`${html} does not exist beside ${js}`);
      continue;
    }
    const { defs, errors } = parseNodeHtml(html);
    problems.push(...errors.filter((e) => / parse: |no <script|no type definitions/.test(e)));
    if (errors.length === 0 && !defs.some((d) => d.type === set)) problems.push(`${html} does not register the type ${set} (it registers ${defs.map((d) => d.type).join(', ') || 'none'})`);
  }
  return problems;
};

/** checknodes.js getNodeDefinitions: the type name a literal and the definition an object literal (non-literal, non-objectexpression). */
const registerTypeLiterals: Rule = (dir) => allDefs(dir).errors.filter((e) => /: non-(literal|objectexpression): /.test(e));

/**
 * checknodes.js getNodeDefinitions: category, color, icon, inputs and outputs plain literals
 * (category-not-inline …); besides, every node that is not a config node declares all five.
 */
const plainProperties: Rule = (dir) => {
  const { defs, errors } = allDefs(dir);
  const problems = errors.filter((e) => /: (category|color|icon|inputs|outputs)-not-inline: /.test(e));
  for (const d of defs) {
    if (!d.props.has('category')) problems.push(`${d.file}: ${d.type} declares no category`);
    if (d.props.get('category') === 'config') continue;
    for (const p of LITERAL_PROPS) if (!d.props.has(p)) problems.push(`${d.file}: ${d.type} declares no ${p}`);
  }
  return problems;
};

/** checknodes.js getNodeDefinitions: defaults and credentials inline object literals (defaults-not-inline, credentials-not-inline). */
const inlineObjects: Rule = (dir) => allDefs(dir).errors.filter((e) => /: (defaults|credentials)-not-inline: |: parse: a spread in /.test(e));

/** N01, the part that needs no catalogue: type names unique, none of Node-RED's core types, and with our redis- prefix (DESIGN.md). */
function uniqueTypes(coreTypes: Set<string>): Rule {
  return (dir) => {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const d of allDefs(dir).defs) {
      if (seen.has(d.type)) problems.push(`type ${d.type} is registered twice`);
      seen.add(d.type);
      if (coreTypes.has(d.type)) problems.push(`type ${d.type} is a Node-RED core type`);
      if (!d.type.startsWith('redis-')) problems.push(`type ${d.type} lacks the redis- prefix that keeps it apart from other packages' types`);
    }
    return problems;
  };
}

function jsonFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? jsonFiles(p) : extname(p) === '.json' ? [p] : [];
  });
}

/** N02 (checknodes.js): examples/ (any depth, .json flows) use every node that is not a config node; each file a flow (an array). */
const examples: Rule = (dir) => {
  const files = jsonFiles(join(dir, 'examples'));
  if (files.length === 0) return ['no examples/*.json'];
  const problems: string[] = [];
  const used = new Set<string>();
  for (const f of files) {
    let flow: unknown;
    try {
      flow = JSON.parse(readFileSync(f, 'utf8'));
    } catch (err) {
      problems.push(`${f}: not JSON (${(err as Error).message})`);
      continue;
    }
    if (!Array.isArray(flow)) {
      problems.push(`${f}: not an array of nodes (the validator cannot read it)`);
      continue;
    }
    for (const n of flow as Array<{ type?: string }>) if (typeof n?.type === 'string') used.add(n.type);
  }
  const types = allDefs(dir).defs.filter((d) => d.props.get('category') !== 'config').map((d) => d.type);
  if (types.length === 0) problems.push('no node types found to look for in the examples');
  for (const t of types) if (!used.has(t)) problems.push(`no example uses ${t}`);
  return problems;
};

/** D01 (checkdeps.js): at most 6 production dependencies. */
const dependencyCount: Rule = (dir) => {
  const n = Object.keys(readPackage(dir).dependencies ?? {}).length;
  return n <= MAX_DEPENDENCIES ? [] : [`${n} dependencies, more than the validator's ${MAX_DEPENDENCIES}`];
};

/**
 * D02 (checkdeps.js, with src/badpackages.json): no known-bad package in the production
 * dependency tree. The validator lists the tree from the registry (npm-remote-ls); offline,
 * package-lock.json holds the same tree as installed.
 */
const badPackages: Rule = (dir) => {
  const lockFile = join(dir, 'package-lock.json');
  if (!existsSync(lockFile)) return ['no package-lock.json to read the dependency tree from'];
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages?: Record<string, { version?: string; dev?: boolean }> };
  if (lock.packages === undefined) return ['package-lock.json has no "packages" (lockfile version 2 or later is needed)'];
  const problems: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.dev === true || path === '') continue;
    const pkgName = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const bad = BAD_PACKAGES[pkgName];
    if (bad !== undefined && entry.version !== undefined && semver.satisfies(entry.version, bad)) problems.push(`${pkgName}@${entry.version} (${path}) is in the production tree; the validator rejects ${pkgName} ${bad}`);
  }
  return problems;
};

/**
 * With --npm the validator reads the published tarball: what the rules above read (every
 * node's .js and .html with its icons and locales, examples/, LICENSE) must be in it; and
 * so must what package.json points at (main, types, bin).
 */
const tarball: Rule = (dir) => {
  const listed = npmPackFiles(dir);
  const problems: string[] = [];
  const want = (p: string): void => {
    if (!listed.has(p)) problems.push(`${p} is not in the npm tarball (package.json "files")`);
  };
  want('package.json');
  want('LICENSE');
  const pkg = readPackage(dir);
  const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
  for (const target of [pkg.main, pkg.types, ...bins]) if (target !== undefined) want(target.replace(/^\.\//, ''));
  for (const f of jsonFiles(join(dir, 'examples'))) want(f.slice(dir.length + 1));
  if (jsonFiles(join(dir, 'examples')).length === 0) problems.push('no examples to ship');
  for (const { js, html } of nodeHtmlFiles(dir)) {
    want(js.slice(dir.length + 1));
    want(html.slice(dir.length + 1));
    const nodeDir = js.slice(dir.length + 1, js.lastIndexOf('/'));
    if (![...listed].some((p) => p.startsWith(`${nodeDir}/locales/`))) problems.push(`${nodeDir}/locales/ is not in the npm tarball`);
  }
  // Node-RED makes one icon set of a package from the icons/ folders beside each of its node .js files
  const iconDirs = nodeHtmlFiles(dir).map(({ js }) => `${js.slice(dir.length + 1, js.lastIndexOf('/'))}/icons`);
  for (const d of allDefs(dir).defs) {
    const icon = d.props.get('icon');
    if (typeof icon !== 'string' || !/\.(svg|png)$/.test(icon)) continue;
    if (!iconDirs.some((iconDir) => listed.has(`${iconDir}/${icon}`))) problems.push(`icon ${icon} of ${d.type} is not in the npm tarball`);
  }
  return problems;
};

/** What the tarball may hold: package.json, README, LICENSE, the built code, the editor's resources, the example flows. */
const SHIPPED = /^(package\.json|README\.md|LICENSE|dist\/(bin|lib|nodes)\/.+|resources\/.+|examples\/.+\.json)$/;
/** Never in it: source maps (the .ts they point at is not shipped), tests, test fixtures and RDB files. */
const NEVER_SHIPPED = /\.map$|(^|\/)test\/|\.test\.|(^|\/)fixtures\/|\.rdb$/;

/** The tarball holds only what a user needs, and each icon once (one copy serves every node of the package). */
const onlyWhatUsersNeed: Rule = (dir) => {
  const problems: string[] = [];
  const icons = new Map<string, string[]>();
  for (const p of npmPackFiles(dir)) {
    if (!SHIPPED.test(p) || NEVER_SHIPPED.test(p)) problems.push(`${p} is in the npm tarball, which ships only what a user needs`);
    const icon = /\/icons\/([^/]+)$/.exec(p)?.[1];
    if (icon !== undefined) icons.set(icon, [...(icons.get(icon) ?? []), p]);
  }
  for (const [icon, paths] of icons) if (paths.length > 1) problems.push(`icon ${icon} is in the npm tarball ${paths.length} times (${paths.join(', ')})`);
  return problems;
};

const packCache = new Map<string, Set<string>>();
function npmPackFiles(dir: string): Set<string> {
  const cached = packCache.get(dir);
  if (cached !== undefined) return cached;
  throw new Error(`npm pack was not run for ${dir}`);
}

async function npmPack(dir: string): Promise<void> {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, maxBuffer: 64 * 1024 * 1024 });
  const [result] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  packCache.set(dir, new Set(result.files.map((f) => f.path)));
}

// ---- what the rules compare with ----

/** The current Node-RED release from the registry, as the validator asks it; KNOWN_NODE_RED when that fails. */
async function currentNodeRed(): Promise<NodeRedRelease> {
  try {
    const { stdout } = await promisify(execFile)('npm', ['view', 'node-red', 'dist-tags', 'engines', '--json'], { timeout: 20_000 });
    const r = JSON.parse(stdout) as { 'dist-tags': Record<string, string>; engines?: { node?: string } };
    const supported = Object.fromEntries(Object.entries(r['dist-tags']).filter(([tag]) => /.*maintenance.*|^latest$/.test(tag)));
    if (supported.latest === undefined || r.engines?.node === undefined) throw new Error('incomplete answer');
    return { supported, latestEngines: r.engines.node, from: 'the npm registry' };
  } catch (err) {
    console.log(`      (npm view node-red failed: ${(err as Error).message.split('\n')[0]}; checking against ${KNOWN_NODE_RED.from})`);
    return KNOWN_NODE_RED;
  }
}

/** The Node-RED versions this suite runs on: the devDependency, and the one under test (test:node-red5 sets REDIS_SYNC_NODE_RED). */
function testedNodeRed(): Record<string, string> {
  const versions: Record<string, string> = { 'the devDependency in node_modules': nodeRedRequire('./package.json').version as string };
  const other = process.env.REDIS_SYNC_NODE_RED;
  if (other !== undefined && other !== '') versions[`REDIS_SYNC_NODE_RED=${other}`] = (JSON.parse(readFileSync(join(other, 'package.json'), 'utf8')) as { version: string }).version;
  return versions;
}

/** Every type Node-RED's core nodes register, read from their .html like ours. */
function coreNodeTypes(): Set<string> {
  const core = join(nodeRedRequire.resolve('@node-red/nodes/package.json'), '..', 'core');
  const types = new Set<string>();
  for (const group of readdirSync(core)) {
    const d = join(core, group);
    if (!statSync(d).isDirectory()) continue;
    for (const f of readdirSync(d).filter((x) => x.endsWith('.html'))) for (const def of parseNodeHtml(join(d, f)).defs) types.add(def.type);
  }
  return types;
}

// ---- the tests ----

describe('package: Node-RED package validator rules (node-red-dev validate), offline', function () {
  this.timeout(120_000);
  let release: NodeRedRelease;
  let coreTypes: Set<string>;

  before(async function () {
    assert.ok(existsSync(join(ROOT, 'dist', 'nodes')), 'dist/nodes is missing: run npm run build first (npm test does)');
    release = await currentNodeRed();
    coreTypes = coreNodeTypes();
    assert.ok(coreTypes.has('inject') && coreTypes.has('function'), `core node types not found (${[...coreTypes].join(', ')})`);
    await npmPack(ROOT);
  });

  const ok = (rule: Rule): (() => void) => () => assert.deepEqual(rule(ROOT), []);

  describe('this package passes', () => {
    it('P01 license: a license, and its LICENSE file', ok(license));
    it('P03 repository or bugs URL', ok(repositoryOrBugs));
    it('P04 name: a valid npm name; the node-red prefix only as node-red-contrib-', ok(name));
    it('P05 keywords include node-red', ok(keyword));
    it('P06 node-red.version includes the latest (and any maintenance) Node-RED release', () => {
      assert.deepEqual(nodeRedVersion(release)(ROOT), []);
      assert.deepEqual(nodeRedVersion(KNOWN_NODE_RED)(ROOT), []);
    });
    it('node-red.version includes the Node-RED versions this suite runs on (the runtime refuses others)', () => assert.deepEqual(runsOn(testedNodeRed())(ROOT), []));
    it('P07 engines.node admits the lowest Node the latest Node-RED supports', () => {
      assert.deepEqual(enginesNode(release)(ROOT), []);
      assert.deepEqual(enginesNode(KNOWN_NODE_RED)(ROOT), []);
    });
    it('every node .html beside its built .js parses as the validator parses it and registers its type', ok(htmlParses));
    it('registerType: the type name a literal, the definition an object literal', ok(registerTypeLiterals));
    it('registerType: category, color, icon, inputs, outputs plain literals (declared by every non-config node)', ok(plainProperties));
    it('registerType: defaults and credentials inline object literals', ok(inlineObjects));
    it('N01 (offline part) node types unique, not core types, redis- prefixed', () => assert.deepEqual(uniqueTypes(coreTypes)(ROOT), []));
    it('N02 an example flow for every node that is not a config node', ok(examples));
    it('D01 at most 6 dependencies', ok(dependencyCount));
    it('D02 no known-bad package in the production dependency tree', ok(badPackages));
    it('the npm tarball holds the nodes (.js, .html, icons, locales), examples/, LICENSE, and main/types/bin targets', ok(tarball));
    it('the npm tarball holds nothing else: no source maps, tests or fixtures; each icon once', ok(onlyWhatUsersNeed));
  });

  describe('each rule fails on a package broken its way', () => {
    let dir: string;
    beforeEach(() => {
      // the parts of the package the rules read
      dir = mkdtempSync(join(tmpdir(), 'package-rules-'));
      for (const p of ['package.json', 'package-lock.json', 'README.md', 'LICENSE', 'examples', join('dist', 'nodes')]) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const editPackage = (change: (pkg: Record<string, unknown>) => void): void => {
      const pkg = readPackage(dir) as Record<string, unknown>;
      change(pkg);
      writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
    };
    const nodeRed = (pkg: Record<string, unknown>): Record<string, unknown> => pkg['node-red'] as Record<string, unknown>;
    /** Replaces text in a built node .html; fails when the text is not there (the test would prove nothing). */
    const editHtml = (type: string, from: string | RegExp, to: string): void => {
      const file = join(dir, 'dist', 'nodes', type, `${type}.html`);
      const before = readFileSync(file, 'utf8');
      const after = before.replace(from, to);
      assert.notEqual(after, before, `${String(from)} not found in ${type}.html`);
      writeFileSync(file, after);
    };
    const fails = (rule: Rule, what: RegExp): void => {
      const problems = rule(dir);
      assert.ok(problems.some((p) => what.test(p)), `expected a problem matching ${what}, got ${JSON.stringify(problems)}`);
    };

    it('P01 without a license', () => {
      editPackage((p) => delete p.license);
      fails(license, /no "license"/);
    });
    it('P03 without repository and bugs', () => {
      editPackage((p) => {
        delete p.repository;
        delete p.bugs;
      });
      fails(repositoryOrBugs, /neither/);
    });
    it('P04 named node-red-… without -contrib-, or not a valid npm name', () => {
      editPackage((p) => (p.name = 'node-red-redis-sync'));
      fails(name, /node-red-contrib-/);
      editPackage((p) => (p.name = 'Redis Sync'));
      fails(name, /not a valid npm package name/);
    });
    it('P05 without the node-red keyword', () => {
      editPackage((p) => (p.keywords = ['redis']));
      fails(keyword, /node-red/);
    });
    it('P06 with a node-red.version that excludes the latest release, or none', () => {
      editPackage((p) => (nodeRed(p).version = '>=4.0.0 <5.0.0'));
      fails(nodeRedVersion(KNOWN_NODE_RED), /excludes Node-RED 5\./);
      editPackage((p) => delete nodeRed(p).version);
      fails(nodeRedVersion(KNOWN_NODE_RED), /no node-red.version/);
    });
    it('node-red.version that excludes a Node-RED the suite runs on', () => {
      editPackage((p) => (nodeRed(p).version = '>=5.0.0'));
      fails(runsOn({ 'Node-RED 4': '4.1.15' }), /excludes Node-RED 4\.1\.15/);
    });
    it('P07 with an engines.node above what the latest Node-RED needs, or none', () => {
      editPackage((p) => (p.engines = { node: '>=24' }));
      fails(enginesNode(KNOWN_NODE_RED), /excludes Node 22\.9\.0/);
      editPackage((p) => delete p.engines);
      fails(enginesNode(KNOWN_NODE_RED), /no engines.node/);
    });
    it('.html without a text/javascript script, with a syntax error, or missing', () => {
      editHtml('redis-slot-router', '<script type="text/javascript">', '<script>');
      fails(htmlParses, /no <script type="text\/javascript">/);
      editHtml('redis-op-filter', 'RED.nodes.registerType("redis-op-filter", {', 'RED.nodes.registerType("redis-op-filter", {{');
      fails(htmlParses, /redis-op-filter\.html: parse: /);
      rmSync(join(dir, 'dist', 'nodes', 'redis-precheck', 'redis-precheck.html'));
      fails(htmlParses, /redis-precheck\.html does not exist/);
    });
    it('registerType with a computed type name or definition', () => {
      editHtml('redis-slot-router', 'registerType("redis-slot-router",', 'registerType("redis-" + "slot-router",');
      fails(registerTypeLiterals, /non-literal/);
      editHtml('redis-op-filter', /registerType\("redis-op-filter", \{/, 'registerType("redis-op-filter", Object.assign({}, {})); RED.nodes.registerType("unused", {');
      fails(registerTypeLiterals, /non-objectexpression/);
    });
    it('registerType with a computed color, icon, inputs, outputs or category, or a node declaring no color', () => {
      for (const [prop, from, to] of [
        ['color', 'color: "#E5A29A"', 'color: COLOR'],
        ['icon', 'icon: "redis-sync.svg"', 'icon: `redis-sync.svg`'],
        ['inputs', 'inputs: 1', 'inputs: -1 + 2'],
        ['outputs', 'outputs: 2', 'outputs: OUTPUTS'],
        ['category', 'category: "redis sync"', 'category: t("category")'],
      ]) {
        const type = prop === 'outputs' ? 'redis-precheck' : 'redis-cluster-sink';
        editHtml(type, from, to);
        fails(plainProperties, new RegExp(`${type}\\.html.*${prop}-not-inline`));
        editHtml(type, to, from);
      }
      editHtml('redis-cluster-sink', /\n\s*color: "#E5A29A",/, '');
      fails(plainProperties, /redis-cluster-sink declares no color/);
    });
    it('registerType with defaults or credentials not inline', () => {
      editHtml('redis-slot-router', 'registerType("redis-slot-router", {', 'registerType("redis-slot-router", { defaults: DEFAULTS,');
      fails(inlineObjects, /defaults-not-inline/);
      editHtml('redis-endpoint', 'registerType("redis-endpoint", {', 'registerType("redis-endpoint", { credentials: creds(),');
      fails(inlineObjects, /credentials-not-inline/);
    });
    it('N01 a type registered twice, a core type, or a type without the redis- prefix', () => {
      editHtml('redis-slot-router', 'registerType("redis-slot-router",', 'registerType("redis-op-filter",');
      fails(uniqueTypes(coreTypes), /redis-op-filter is registered twice/);
      editHtml('redis-precheck', 'registerType("redis-precheck",', 'registerType("inject",');
      fails(uniqueTypes(coreTypes), /inject is a Node-RED core type/);
      editHtml('redis-cluster-sink', 'registerType("redis-cluster-sink",', 'registerType("cluster-sink",');
      fails(uniqueTypes(coreTypes), /cluster-sink lacks the redis- prefix/);
    });
    it('N02 a node no example uses, an example that is not a flow, or no examples', () => {
      for (const f of jsonFiles(join(dir, 'examples'))) {
        const flow = JSON.parse(readFileSync(f, 'utf8')) as Array<{ type: string }>;
        writeFileSync(f, JSON.stringify(flow.filter((n) => n.type !== 'redis-slot-router')));
      }
      fails(examples, /no example uses redis-slot-router/);
      writeFileSync(join(dir, 'examples', 'not-a-flow.json'), '{"nodes": []}');
      fails(examples, /not-a-flow\.json: not an array/);
      rmSync(join(dir, 'examples'), { recursive: true });
      fails(examples, /no examples/);
    });
    it('D01 more than 6 dependencies', () => {
      editPackage((p) => (p.dependencies = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((d) => [d, '1.0.0']))));
      fails(dependencyCount, /7 dependencies/);
    });
    it('D02 a known-bad package in the production tree (and not when it is a dev dependency)', () => {
      const lockFile = join(dir, 'package-lock.json');
      const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages: Record<string, object> };
      lock.packages['node_modules/some-dev-tool/node_modules/agent-base'] = { version: '5.1.1', dev: true };
      writeFileSync(lockFile, JSON.stringify(lock));
      assert.deepEqual(badPackages(dir), []);
      lock.packages['node_modules/ioredis/node_modules/agent-base'] = { version: '5.1.1' };
      writeFileSync(lockFile, JSON.stringify(lock));
      fails(badPackages, /agent-base@5\.1\.1/);
    });
    it('a tarball without examples/, the node .html, icons or locales, or a main that is not there', async () => {
      editPackage((p) => (p.files = ['dist/**/*.js', 'README.md', 'LICENSE']));
      await npmPack(dir);
      fails(tarball, /examples\/.*\.json is not in the npm tarball/);
      fails(tarball, /redis-slot-router\.html is not in the npm tarball/);
      fails(tarball, /icon redis-sync\.svg of redis-cluster-sink is not in the npm tarball/);
      fails(tarball, /locales\/ is not in the npm tarball/);
      editPackage((p) => (p.main = 'dist/lib/index.js'));
      await npmPack(dir);
      fails(tarball, /dist\/lib\/index\.js is not in the npm tarball/);
    });
    it('a tarball with source maps, test fixtures, or an icon twice', async () => {
      writeFileSync(join(dir, 'dist', 'nodes', 'node-red.js.map'), '{}');
      mkdirSync(join(dir, 'test', 'fixtures', 'rdb'), { recursive: true });
      writeFileSync(join(dir, 'test', 'fixtures', 'rdb', 'empty.rdb'), 'REDIS0011');
      const iconDirs = nodeHtmlFiles(dir).map(({ js }) => join(js, '..', 'icons'));
      const withIcons = iconDirs.find((d) => existsSync(d)) ?? assert.fail('no icons/ beside any node');
      const icon = readdirSync(withIcons)[0];
      cpSync(withIcons, iconDirs.find((d) => d !== withIcons) ?? assert.fail('a single node'), { recursive: true });
      editPackage((p) => (p.files = ['dist/', 'test/', 'examples/', 'README.md', 'LICENSE']));
      await npmPack(dir);
      fails(onlyWhatUsersNeed, /dist\/nodes\/node-red\.js\.map is in the npm tarball/);
      fails(onlyWhatUsersNeed, /test\/fixtures\/rdb\/empty\.rdb is in the npm tarball/);
      fails(onlyWhatUsersNeed, new RegExp(`icon ${icon.replace('.', '\\.')} is in the npm tarball 2 times`));
    });
  });
});

// ---- the tarball npm pack makes from a clean checkout, installed into a fresh Node-RED ----

/**
 * The working tree as a fresh clone of it would be: the files git tracks or would track (new
 * ones included; ignored ones such as dist/ and node_modules/ not), with this checkout's
 * node_modules linked in, as `npm ci` would install them, for the build's tools.
 */
async function cleanCheckout(into: string): Promise<void> {
  const { stdout } = await promisify(execFile)('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  for (const f of stdout.split('\0')) {
    // a tracked file deleted in the working tree is not in the next commit either
    if (f !== '' && existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(into, f));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir');
}

/** A module as Node-RED's admin API describes it (GET /nodes/:module). */
interface ModuleInfo {
  name: string;
  version: string;
  /** Where the runtime loaded it from. */
  path: string;
  nodes: Array<{ id: string; types: string[]; enabled: boolean; err?: string }>;
}

describe('package: npm pack from a clean checkout, installed and loaded by Node-RED as a user does it', function () {
  this.timeout(120_000);
  const pkg = readPackage(ROOT);
  const moduleName = pkg.name ?? '';
  let work: string;
  let checkout: string;
  let installed: string;
  let nodeRed: NodeRedProcess;
  let api: (path: string) => Promise<Response>;

  before(async function () {
    work = mkdtempSync(join(tmpdir(), 'package-install-'));
    checkout = join(work, 'checkout');
    const userDir = join(work, 'node-red');
    mkdirSync(userDir);
    const seconds = (t0: number): string => ((performance.now() - t0) / 1000).toFixed(1);

    let t0 = performance.now();
    await cleanCheckout(checkout);
    assert.ok(!existsSync(join(checkout, 'dist')), 'the checkout has no dist/ to pack');
    const copied = seconds(t0);
    t0 = performance.now();
    const { stdout } = await promisify(execFile)('npm', ['pack', '--json', '--pack-destination', work], { cwd: checkout, maxBuffer: 64 * 1024 * 1024 });
    const [{ filename }] = JSON.parse(stdout) as Array<{ filename: string }>;
    const tgz = join(work, filename);
    const packed = seconds(t0);
    // what is in the file itself, not what npm says it put there
    const { stdout: listing } = await promisify(execFile)('tar', ['-tzf', tgz], { maxBuffer: 64 * 1024 * 1024 });
    const files = listing.split('\n').filter((l) => l !== '' && !l.endsWith('/')).map((l) => l.replace(/^package\//, ''));
    packCache.set(checkout, new Set(files));

    // as Node-RED's palette manager installs a package (@node-red/registry lib/installer.js),
    // from the npm cache when it has the dependencies
    writeFileSync(join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true }));
    t0 = performance.now();
    await promisify(execFile)('npm', ['install', '--no-audit', '--no-update-notifier', '--no-fund', '--save', '--save-prefix=~', '--omit=dev', '--engine-strict', '--prefer-offline', tgz], { cwd: userDir });
    const install = seconds(t0);
    installed = join(userDir, 'node_modules', moduleName);
    // a link would be the working tree, not the tarball (and NodeRedProcess links the working tree where nothing is installed)
    assert.ok(lstatSync(installed).isDirectory(), `${installed} is not a directory`);

    t0 = performance.now();
    nodeRed = new NodeRedProcess(userDir);
    await nodeRed.start();
    const started = seconds(t0);
    api = (path) => fetch(new URL(path, nodeRed.url), { headers: { Accept: 'application/json' } });
    const tgzKb = (statSync(tgz).size / 1024).toFixed(0);
    console.log(`      clean checkout ${copied} s; npm pack (prepack build) ${packed} s: ${files.length} files, ${tgzKb} KiB; npm install ${install} s; Node-RED start ${started} s`);
  });

  after(async function () {
    await nodeRed?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('prepack built dist/: the tarball holds the nodes (.js, .html, icons, locales), the bin, examples/, LICENSE', () => assert.deepEqual(tarball(checkout), []));
  it('the tarball holds nothing else: no source maps, tests or fixtures; each icon once', () => assert.deepEqual(onlyWhatUsersNeed(checkout), []));

  it('Node-RED loads every node type of the package from the installed tarball, enabled, without error', async () => {
    const res = await api(`nodes/${moduleName}`);
    assert.equal(res.status, 200, `GET /nodes/${moduleName}`);
    const info = (await res.json()) as ModuleInfo;
    assert.equal(realpathSync(info.path), realpathSync(installed));
    assert.equal(info.version, pkg.version);
    const want = Object.keys(pkg['node-red']?.nodes ?? {});
    assert.deepEqual(info.nodes.flatMap((s) => s.types).sort(), [...want].sort(), `types registered by ${moduleName}`);
    for (const s of info.nodes) {
      assert.equal(s.err, undefined, `${s.id}: ${s.err}`);
      assert.ok(s.enabled, `${s.id} is disabled`);
    }
    console.log(`      GET /nodes/${moduleName}: version ${info.version}, ${info.nodes.length} node sets enabled: ${info.nodes.flatMap((s) => s.types).join(', ')}`);
  });

  it("Node-RED serves every node's icon from the package's icon set, as the editor asks for it", async () => {
    const iconSets = (await (await api('icons')).json()) as Record<string, string[]>;
    const ours = iconSets[moduleName] ?? [];
    const defs = allDefs(installed).defs;
    assert.equal(defs.length, Object.keys(pkg['node-red']?.nodes ?? {}).length);
    for (const d of defs) {
      const icon = d.props.get('icon');
      if (typeof icon !== 'string') continue;
      assert.ok(ours.includes(icon), `icon ${icon} of ${d.type} is not in the icon set of ${moduleName} (${ours.join(', ')})`);
      const res = await api(`icons/${moduleName}/${icon}`);
      assert.equal(res.status, 200, `GET /icons/${moduleName}/${icon}`);
      assert.match(res.headers.get('content-type') ?? '', /^image\//);
    }
    console.log(`      GET /icons: ${moduleName}: ${ours.join(', ')}`);
  });
});
