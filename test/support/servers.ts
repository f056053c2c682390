import { startCluster, startRedis, type RedisCluster, type RedisServer, type StartClusterOptions, type StartRedisOptions } from '../harness';

/** The servers and clusters one test starts for itself, stopped together after it. */
export class TestServers {
  private started: Array<{ stop(): Promise<void> }> = [];

  async server(opts?: StartRedisOptions): Promise<RedisServer> {
    const s = await startRedis(opts);
    this.started.push(s);
    return s;
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
