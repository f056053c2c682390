import { startCluster, startRedis, type RedisCluster, type RedisServer, type StartClusterOptions, type StartRedisOptions } from '../harness';
import { redisBuild, type VersionName } from './versions';

/** The servers and clusters one test starts for itself, stopped together after it. */
export class TestServers {
  private started: Array<{ stop(): Promise<void> }> = [];

  async server(opts?: StartRedisOptions): Promise<RedisServer> {
    const s = await startRedis(opts);
    this.started.push(s);
    return s;
  }

  /** A server of one of the version suite's builds, with its stock configuration (see requireBuilds for absent ones). */
  async version(name: VersionName): Promise<RedisServer> {
    const build = redisBuild(name);
    if (typeof build === 'string') throw new Error(build);
    return this.server({ binary: build.server, cliBinary: build.cli });
  }

  async cluster(opts?: StartClusterOptions): Promise<RedisCluster> {
    const c = await startCluster(opts);
    this.started.push(c);
    return c;
  }

  async stopAll(): Promise<void> {
    const all = this.started.splice(0);
    await Promise.allSettled(all.map((s) => s.stop()));
  }
}
