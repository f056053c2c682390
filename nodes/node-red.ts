import type { EndpointConfig } from '../lib/endpoint';
import { SyncError } from '../lib/errors';
import type { FlowFault } from '../lib/ops/flow-control';
import type { RedisSyncInfo } from '../lib/ops/message';
import type { SourceProgress } from '../lib/replication/source';

/**
 * The slice of the Node-RED runtime API that this package's nodes use (the project has no
 * @types/node-red), and what their status texts share.
 */

export interface NodeMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  [key: string]: unknown;
}

/** A message of a batch of operations: msg.payload (each node checks it is an array) and msg.redisSync. */
export type OpsMessage = NodeMessage & { redisSync?: RedisSyncInfo };

/** `send` of an input handler: one message, or one per output. */
export type Send = (msg: NodeMessage | Array<NodeMessage | null> | null) => void;
export type Done = (err?: Error) => void;

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

/** A node instance, as `this` in a node's constructor; M is what its input messages carry. */
export interface RuntimeNode<M extends NodeMessage = NodeMessage> {
  readonly id: string;
  on(event: 'input', listener: (msg: M, send: Send, done: Done) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage | Array<NodeMessage | null> | null): void;
  status(status: NodeStatus): void;
  error(message: string, msg?: NodeMessage): void;
  warn(message: string): void;
  log(message: string): void;
}

/** A node (or tab: `disabled`) of the deployed configuration, as RED.nodes.eachNode gives it. */
export interface DeployedNode {
  id: string;
  type: string;
  /** Its tab or subflow. */
  z?: string;
  /** A disabled node. */
  d?: boolean;
  /** A disabled tab. */
  disabled?: boolean;
  /** Per output, the ids of the nodes wired to it. */
  wires?: string[][];
  /** Link nodes: the link nodes on the other side (a link call's: its target link in). */
  links?: string[] | string;
  /** A link out's: 'link' (to its links) or 'return' (to the link call the message came by). */
  mode?: string;
  /** A link call's: 'static' (its links) or 'dynamic' (msg.target names a link in). */
  linkType?: string;
}

/** The RED object handed to a node module. */
export interface NodeRedApi<Def, Node = RuntimeNode> {
  nodes: {
    createNode(node: Node, def: object): void;
    getNode(id: string): unknown;
    registerType(type: string, constructor: (this: Node, def: Def) => void, options?: object): void;
    /** Every node of the deployed flows, including tabs, subflow templates and config nodes. */
    eachNode(callback: (node: DeployedNode) => void): void;
  };
  settings: { userDir?: string };
  /** A message of the node's catalog (locales/en-US/<type>.json), `__name__` substituted. */
  _(key: string, substitutions?: Record<string, string | number>): string;
}

/**
 * A status that follows counts changing with every batch: shown at most once per `everyMs`
 * (at 100k+ ops/s a status per batch would flood the editor and cost more than the batch),
 * at once after a quiet spell, and the last change always shown.
 */
export class StatusThrottle {
  private timer: NodeJS.Timeout | null = null;
  private shownAt = 0;
  private closed = false;

  constructor(
    private readonly everyMs: number,
    private readonly show: () => void,
  ) {}

  /** What the status shows changed. */
  changed(): void {
    if (this.timer !== null || this.closed) return;
    const wait = this.shownAt + this.everyMs - Date.now();
    if (wait <= 0) this.fire();
    else this.timer = setTimeout(() => this.fire(), wait);
  }

  /** The node closes: nothing more is shown. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    this.shownAt = Date.now();
    this.show();
  }
}

/** "1.2M", "34k": a count short enough for a node status. */
export function shortCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return String(n);
}

/** A fault of a node's own settings (CONFIG) or of a message it was given (INPUT): its code goes in the status. */
export class NodeFault extends SyncError<'CONFIG' | 'INPUT'> {}

/** Node-RED shows a status best in under 20 characters; the whole error goes to done(err). */
const STATUS_MAX = 20;

/** Causes a red status names in words of its own (`status.cause.<cause>` in the node's catalog) rather than as "failed: CODE". */
export type Cause = 'auth' | 'noperm' | 'tlsRequired' | 'tls' | 'oom' | 'evictionPolicy';

/** Codes (an error's own, or the destination's reply code) that are such a cause. */
const CAUSES: Readonly<Record<string, Cause>> = {
  AUTH: 'auth',
  NOAUTH: 'auth',
  WRONGPASS: 'auth',
  NOPERM: 'noperm',
  TLS_REQUIRED: 'tlsRequired',
  TLS: 'tls',
  OOM: 'oom',
  EVICTION: 'evictionPolicy',
};

/** The code a status shows (see SyncError.statusCode); '' for an error of no code, not this package's. */
export function codeOf(err: unknown): string {
  return err instanceof SyncError ? err.statusCode : '';
}

/**
 * The red status of a node that stopped: the cause in words when it is one of `Cause` and the
 * node names it (`named`), else its word for "failed" and the error's code.
 */
export function failureStatus(failed: string, err: unknown, named?: (cause: Cause) => string): NodeStatus {
  const code = codeOf(err);
  const cause = Object.hasOwn(CAUSES, code) ? CAUSES[code] : undefined;
  const text = cause !== undefined && named !== undefined ? named(cause) : code === '' ? failed : `${failed}: ${code}`;
  return { fill: 'red', shape: 'dot', text: text.slice(0, STATUS_MAX) };
}

/**
 * What a redis-replica-source node offers the nodes that follow its sync (redis-cutover), as
 * `replicaSource` on its runtime node, found with RED.nodes.getNode(id).
 */
export interface ReplicaSourceHandle {
  readonly endpoint: EndpointConfig;
  /** Its progress now; null while it does not run. */
  progress(): SourceProgress | null;
  /** Whether a sink that may apply its stream is deployed (nodes/deployed-flow.ts sinkDeployed). */
  sinkDeployed(): boolean;
  /** What keeps batches it handed on from being applied, if anything. */
  fault(): FlowFault | null;
}
