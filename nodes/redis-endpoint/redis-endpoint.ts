/**
 * The redis-endpoint configuration node: holds where a Redis is and its credentials; the
 * nodes that use it open their own connections from its config (see lib/endpoint).
 */
import { readEndpointSettings, type EndpointCredentials, type EndpointHandle, type EndpointSettings } from '../../lib/endpoint';

// The slice of the Node-RED runtime API this node uses (no @types/node-red in the project).
interface NodeRedNode {
  readonly id: string;
  credentials?: EndpointCredentials;
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
    // Reported now, at deploy; each node that uses the endpoint refuses it again, naming the problems.
    if (problems.length > 0) this.error(RED._('redis-endpoint.errors.invalid', { problems: problems.join('; ') }));
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
