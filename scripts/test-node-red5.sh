#!/usr/bin/env bash
# Runs the test suite again on Node-RED 5 with Node 22 (Node-RED 5 needs Node >= 22.9).
# Both come from the npm registry (the `node` package brings a Node binary) into .nr5/;
# each test file runs in its own mocha process, as the test helper of Node-RED 5 cannot be
# started twice in one process.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=.nr5
if [ ! -x "$dir/node_modules/.bin/node" ] || [ ! -f "$dir/node_modules/node-red/package.json" ]; then
  mkdir -p "$dir"
  echo '{ "name": "redis-sync-node-red-5", "private": true }' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error node@22 node-red@5)
fi

export PATH="$PWD/$dir/node_modules/.bin:$PATH"
export REDIS_SYNC_NODE_RED="$PWD/$dir/node_modules/node-red"
echo "Node $(node --version), Node-RED $(node -p "require('$REDIS_SYNC_NODE_RED/package.json').version")"

failed=()
for f in test/*.test.ts; do
  if ! node node_modules/mocha/bin/mocha.js --no-config -r tsx/cjs -r test/harness/hooks.ts --extension ts --timeout 60000 --exit "$f"; then failed+=("$f"); fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed on Node-RED 5: ${failed[*]}"
  exit 1
fi
echo "all test files passed on Node-RED 5 with Node 22"
