import type { Cluster } from 'ioredis';
import type { Arg, ClusterExecutor } from '../../lib/cluster/colocate';

/**
 * A ClusterExecutor over an ioredis Cluster client. The client routes every command by its
 * keys (and follows MOVED/ASK), which the emulations always place in the slot they name, so
 * `slot` serves only as the contract's statement of intent here.
 */
export class IoredisClusterExecutor implements ClusterExecutor {
  constructor(private readonly cluster: Cluster) {}

  call(_slot: number, [name, ...args]: Arg[]): Promise<unknown> {
    return this.cluster.callBuffer(String(name), ...args);
  }

  async multi(_slot: number, commands: Arg[][]): Promise<unknown[]> {
    const tx = this.cluster.multi();
    for (const [name, ...args] of commands) tx.callBuffer(String(name), ...args);
    const replies = await tx.exec();
    if (replies === null) throw new Error('MULTI/EXEC was aborted');
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    return replies.map(([, reply]) => reply);
  }
}
