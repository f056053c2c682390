import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The Redis and Valkey builds of the version suite: `<dir>/<version>/redis-server` and
 * `redis-cli`, where dir is REDIS_BIN_DIR or `redis-bin/` beside this repository's folder
 * (how to get them: README, "Supported Redis versions and commands"). Debian's 7.0 on the
 * PATH is always there.
 */
export const REDIS_BIN_DIR = process.env.REDIS_BIN_DIR ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'redis-bin');

export const VERSIONS = ['2.8.24', '3.2.13', '4.0.14', '5.0.14', '6.2.16', '7.2.6', '7.4.1', '8.0-m01', 'valkey-8.0.1'] as const;
export type VersionName = (typeof VERSIONS)[number] | '7.0';

export interface RedisBuild {
  name: VersionName;
  /** Major and minor of the protocol and features (Valkey 8.0 speaks Redis 7.2's). */
  version: [number, number];
  server: string;
  cli: string;
}

/** The build of a version, or why it is absent. */
export function redisBuild(name: VersionName): RedisBuild | string {
  if (name === '7.0') return { name, version: [7, 0], server: 'redis-server', cli: 'redis-cli' };
  const dir = path.join(REDIS_BIN_DIR, name);
  const server = path.join(dir, 'redis-server');
  if (!existsSync(server)) return `${server} is missing`;
  const m = /(\d+)\.(\d+)/.exec(name) as RegExpExecArray;
  const version: [number, number] = name.startsWith('valkey') ? [7, 2] : [Number(m[1]), Number(m[2])];
  return { name, version, server, cli: path.join(dir, 'redis-cli') };
}

/**
 * Skips the running test or hook when a build it needs is absent, naming it (outside CI the
 * builds are optional; under CI, where every build must be there, it fails instead).
 */
export function requireBuilds(ctx: Mocha.Context, names: VersionName[]): void {
  const absent = names.map(redisBuild).filter((b): b is string => typeof b === 'string');
  if (absent.length === 0) return;
  if (process.env.CI) throw new Error(`builds absent: ${absent.join('; ')}`);
  console.log(`      (skipped: ${absent.join('; ')}; see README, "Supported Redis versions and commands")`);
  ctx.skip();
}
