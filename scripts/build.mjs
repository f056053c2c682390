// Compiles with tsc, then puts each node's editor .html beside the built node .js, where
// Node-RED looks for it (next to the file named in package.json), and the icons once.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// Built beside dist/ and swapped in at the end: a test run that loads dist/ while a build
// runs sees the old build or the new one, never a half-written or missing one.
const out = `dist.building-${process.pid}`;
rmSync(out, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { stdio: 'inherit' });
  copyAssets(out);
  const old = `dist.old-${process.pid}`;
  if (existsSync('dist')) renameSync('dist', old);
  renameSync(out, 'dist');
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(out, { recursive: true, force: true });
}

function copyAssets(dist) {
  if (existsSync('nodes')) {
    const types = readdirSync('nodes', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    for (const type of types) {
      const from = join('nodes', type);
      const to = join(dist, 'nodes', type);
      for (const f of readdirSync(from)) {
        if (f.endsWith('.html') || f === 'locales') cpSync(join(from, f), join(to, f), { recursive: true });
      }
    }
    // Node-RED gathers the icons/ folders beside all of a package's node .js files into one
    // icon set of the package, which the editor looks up for each of its nodes: one copy
    // beside the first node serves them all (test/package.test.ts checks it in a real runtime).
    if (existsSync('icons') && types.length > 0) cpSync('icons', join(dist, 'nodes', types[0], 'icons'), { recursive: true });
  }
  if (existsSync(join(dist, 'bin', 'redis-sync.js'))) chmodSync(join(dist, 'bin', 'redis-sync.js'), 0o755);
}
