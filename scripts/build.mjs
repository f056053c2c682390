// Compiles with tsc, then puts each node's editor .html and the icons beside the
// built node .js: Node-RED looks for both only next to the file named in package.json.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

if (existsSync('nodes')) {
  for (const type of readdirSync('nodes', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
    const from = join('nodes', type);
    const to = join('dist', 'nodes', type);
    for (const f of readdirSync(from)) {
      if (f.endsWith('.html') || f === 'locales') cpSync(join(from, f), join(to, f), { recursive: true });
    }
    if (existsSync('icons')) cpSync('icons', join(to, 'icons'), { recursive: true });
  }
}
if (existsSync('dist/bin/redis-sync.js')) chmodSync('dist/bin/redis-sync.js', 0o755);
