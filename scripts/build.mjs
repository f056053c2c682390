// Compiles with tsc, then puts each node's editor .html beside the built node .js, where
// Node-RED looks for it (next to the file named in package.json), and the icons once.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

if (existsSync('nodes')) {
  const types = readdirSync('nodes', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const type of types) {
    const from = join('nodes', type);
    const to = join('dist', 'nodes', type);
    for (const f of readdirSync(from)) {
      if (f.endsWith('.html') || f === 'locales') cpSync(join(from, f), join(to, f), { recursive: true });
    }
  }
  // Node-RED gathers the icons/ folders beside all of a package's node .js files into one
  // icon set of the package, which the editor looks up for each of its nodes: one copy
  // beside the first node serves them all (test/package.test.ts checks it in a real runtime).
  if (existsSync('icons') && types.length > 0) cpSync('icons', join('dist', 'nodes', types[0], 'icons'), { recursive: true });
}
if (existsSync('dist/bin/redis-sync.js')) chmodSync('dist/bin/redis-sync.js', 0o755);
