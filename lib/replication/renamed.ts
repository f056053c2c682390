import { ReplicationError } from './errors';

/**
 * The name a provider gave a command (PSYNC or SYNC) on the source's nodes, from a setting:
 * empty for its own name; one name for every node; or `host:port@name` per node,
 * comma-separated, as RedisShake's `aws_psync` takes it (ElastiCache hands out one renamed
 * PSYNC per node after a support request), with an optional bare name for the nodes not
 * listed. Throws a LOCAL ReplicationError naming a malformed entry.
 */
export function commandNames(spec: string | undefined, command: 'PSYNC' | 'SYNC'): (host: string, port: number) => string {
  const perNode = new Map<string, string>();
  let fallback: string = command;
  for (const entry of (spec ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const at = entry.lastIndexOf('@');
    const name = at < 0 ? entry : entry.slice(at + 1);
    const node = at < 0 ? null : entry.slice(0, at);
    if (!/^\S+$/.test(name) || (node !== null && !/^\S+:\d+$/.test(node))) {
      throw new ReplicationError('LOCAL', `the renamed ${command} "${entry}" is neither a command name nor host:port@name`);
    }
    if (node === null) fallback = name;
    else perNode.set(node.toLowerCase(), name);
  }
  return (host, port) => perNode.get(`${host}:${port}`.toLowerCase()) ?? fallback;
}
