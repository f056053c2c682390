/**
 * The redis-endpoint configuration node: holds where a Redis is and its credentials, and
 * shares one client among the nodes that use it (see lib/endpoint).
 */
import type { Cluster, Redis } from 'ioredis';
import {
  createClient,
  describeEndpoint,
  readEndpointSettings,
  SharedConnections,
  type EndpointConfig,
  type EndpointCredentials,
  type EndpointHandle,
  type EndpointSettings,
  type EndpointUser,
} from '../../lib/endpoint';

// The slice of the Node-RED runtime API this node uses (no @types/node-red in the project).
interface NodeRedNode {
  readonly id: string;
  credentials?: EndpointCredentials;
  on(event: 'close', listener: (removed: boolean, done: (err?: Error) => void) => void): void;
  log(message: string): void;
  error(message: string): void;
}

interface NodeRedApi {
  nodes: {
    createNode(node: NodeRedNode, def: object): void;
    registerType(
      type: string,
      constructor: (this: RedisEndpointNode, def: RedisEndpointDef) => void,
      options: { credentials: Record<keyof EndpointCredentials, { type: 'text' | 'password' }> },
    ): void;
  };
  /** Message from this module's catalog (locales/en-US/redis-endpoint.json), `__name__` substituted. */
  _(key: string, substitutions?: Record<string, string | number>): string;
}

interface RedisEndpointDef extends EndpointSettings {
  id: string;
  name?: string;
}

type RedisEndpointNode = NodeRedNode & { -readonly [K in keyof EndpointHandle]: EndpointHandle[K] };

export = function register(RED: NodeRedApi): void {
  function RedisEndpointNode(this: RedisEndpointNode, def: RedisEndpointDef): void {
    RED.nodes.createNode(this, def);
    const { config, problems } = readEndpointSettings(def, this.credentials);
    this.config = config;
    const invalid = problems.length > 0 ? RED._('redis-endpoint.errors.invalid', { problems: problems.join('; ') }) : undefined;
    // Reported now, at deploy, and again to each node that tries to use the endpoint.
    if (invalid !== undefined) this.error(invalid);

    const connections = new SharedConnections<Redis | Cluster>(() => openClient(this, config));
    this.acquire = (user: EndpointUser) => {
      if (invalid !== undefined) throw new Error(invalid);
      return connections.acquire(user.id);
    };
    this.release = (user: EndpointUser) => connections.release(user.id);
    // Node-RED stops users and config nodes concurrently, so users still registered are closed for too.
    this.on('close', (_removed, done) => {
      connections.closeAll().then(() => done(), done);
    });
  }

  function openClient(node: RedisEndpointNode, config: EndpointConfig): Redis | Cluster {
    const endpoint = describeEndpoint(config);
    const client = createClient(config);
    // ioredis retries on its own and reports each failed attempt: one log line per new error is enough.
    let lastError: string | undefined;
    client.on('error', (err: Error) => {
      if (err.message === lastError) return;
      lastError = err.message;
      node.error(RED._('redis-endpoint.errors.connection', { endpoint, error: err.message }));
    });
    client.on('ready', () => {
      lastError = undefined;
      node.log(RED._('redis-endpoint.log.connected', { endpoint }));
    });
    return client;
  }

  RED.nodes.registerType('redis-endpoint', RedisEndpointNode, {
    credentials: {
      username: { type: 'text' },
      password: { type: 'password' },
      // A private key stays out of flows.json (often kept in git), as the core tls-config node does.
      tlsKey: { type: 'text' },
    },
  });
};
