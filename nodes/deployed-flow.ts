/**
 * What the deployed configuration (RED.nodes.eachNode) tells about where the batches go. It is
 * complete before the first node starts and follows every deploy, so it is known before the
 * first batch; a sink itself only learns which source it serves when a batch reaches it.
 */
import type { DeployedNode, NodeRedApi } from './node-red';

const SINK = 'redis-cluster-sink';

/** What is asked of the RED object a node module is given. */
type Red = { nodes: Pick<NodeRedApi<unknown, unknown>['nodes'], 'eachNode'> };

/** The nodes that run: not disabled, not on a disabled tab. */
function running(RED: Red): Map<string, DeployedNode> {
  const all: DeployedNode[] = [];
  const disabledTabs = new Set<string>();
  RED.nodes.eachNode((n) => {
    if (n.type === 'tab' && n.disabled === true) disabledTabs.add(n.id);
    else if (n.d !== true) all.push(n);
  });
  return new Map(all.filter((n) => n.z === undefined || !disabledTabs.has(n.z)).map((n) => [n.id, n]));
}

/**
 * Whether a redis-cluster-sink may consume a source's stream: any one deployed in this runtime.
 * Which sinks a source's batches reach cannot be told from the wires for sure (see
 * sinkWiredBehind for what escapes them); a wrong "no" would save positions no sink applied, a
 * wrong "yes" only keeps a source with no sink of its own from saving any.
 */
export function sinkDeployed(RED: Red): boolean {
  return [...running(RED).values()].some((n) => n.type === SINK);
}

/**
 * Whether a redis-cluster-sink is wired behind the outputs of node `id`: reached along wires
 * (through function, change, delay … nodes alike), from a link out to its link in nodes, from a
 * link call to its link in (any, for a dynamic one) and on along its own wires, and into a
 * subflow instance (its template's nodes, then on along the instance's wires). Null when `id`
 * is not in the configuration as deployed (a node inside a subflow instance runs under an id
 * of its own): the caller asks sinkDeployed instead. Paths without wires (MQTT or HTTP out and
 * in, Catch and Complete nodes) are not followed.
 */
export function sinkWiredBehind(RED: Red, id: string): boolean | null {
  const byId = running(RED);
  const start = byId.get(id);
  if (start === undefined) return null;
  const linkIns = [...byId.values()].filter((n) => n.type === 'link in');
  const seen = new Set<string>([id]);
  const queue: string[] = [];
  const reach = (ids: Iterable<string>): void => {
    for (const next of ids) {
      if (!seen.has(next) && byId.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  };
  const linksOf = (n: DeployedNode): string[] => (typeof n.links === 'string' ? [n.links] : (n.links ?? []));
  const after = (n: DeployedNode): void => {
    reach((n.wires ?? []).flat());
    if (n.type === 'link out' && (n.mode ?? 'link') === 'link') {
      // the runtime joins both sides' `links`, as flows/util.js parseConfig does
      reach(linksOf(n));
      reach(linkIns.filter((l) => linksOf(l).includes(n.id)).map((l) => l.id));
    } else if (n.type === 'link call') {
      reach(n.linkType === 'dynamic' ? linkIns.map((l) => l.id) : linksOf(n));
    } else if (n.type.startsWith('subflow:')) {
      const template = n.type.slice('subflow:'.length);
      reach([...byId.values()].filter((m) => m.z === template).map((m) => m.id));
    }
  };
  after(start);
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const n = byId.get(next) as DeployedNode;
    if (n.type === SINK) return true;
    after(n);
  }
  return false;
}
