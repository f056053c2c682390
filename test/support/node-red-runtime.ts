import { join } from 'node:path';

/**
 * The Node-RED the tests run against: the devDependency (4.1.x), or another installation
 * named by REDIS_SYNC_NODE_RED (the folder of its `node-red` package), as CI does to run the
 * suite on Node-RED 5 with Node 22 too.
 */
export function nodeRedPackageDir(): string {
  return process.env.REDIS_SYNC_NODE_RED ?? join(require.resolve('node-red/package.json'), '..');
}

/** The major version of the Node-RED under test. */
export function nodeRedMajor(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a JSON file whose path is known at run time
  return Number((require(join(nodeRedPackageDir(), 'package.json')) as { version: string }).version.split('.')[0]);
}
