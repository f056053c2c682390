/**
 * One client per endpoint, shared by everything that uses the endpoint and closed when the
 * last user leaves (the pattern of Node-RED's MQTT broker node: register/deregister users).
 */
import type { Cluster, Redis } from 'ioredis';
import type { EndpointConfig } from './config';

/** The part of an ioredis Redis or Cluster that closing needs. */
export interface ClosableClient {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(): void;
  once(event: 'end', listener: () => void): unknown;
  off(event: 'end', listener: () => void): unknown;
}

/** Whoever uses an endpoint; a Node-RED node qualifies through its id. */
export interface EndpointUser {
  readonly id: string;
}

/**
 * What a node using an endpoint may rely on; the redis-endpoint config node implements it.
 * A user needing a connection of its own (blocking commands, a replication stream) builds it
 * from `config` instead of acquiring the shared one.
 */
export interface EndpointHandle {
  readonly config: EndpointConfig;
  /** The shared client; throws when the endpoint's configuration has problems. */
  acquire(user: EndpointUser): Redis | Cluster;
  /** Resolves once the client is closed, if this was its last user. */
  release(user: EndpointUser): Promise<void>;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

export class SharedConnections<C extends ClosableClient = Redis | Cluster> {
  private client: C | undefined;
  private readonly users = new Set<string>();
  private readonly closing = new Set<Promise<void>>();

  /**
   * @param open makes the client when the first user arrives.
   * @param closeTimeoutMs how long QUIT may take before the socket is dropped.
   */
  constructor(
    private readonly open: () => C,
    private readonly closeTimeoutMs = DEFAULT_CLOSE_TIMEOUT_MS,
  ) {}

  get userCount(): number {
    return this.users.size;
  }

  /** The shared client, opened for the first user. A user acquiring twice still counts once. */
  acquire(userId: string): C {
    // Opened before the user is counted, so a throwing open() leaves no phantom user behind.
    this.client ??= this.open();
    this.users.add(userId);
    return this.client;
  }

  /** Closes the client when userId was its last user; releasing an unknown user does nothing. */
  async release(userId: string): Promise<void> {
    if (!this.users.delete(userId) || this.users.size > 0) return;
    await this.closeClient();
  }

  /** Closes the client whoever still holds it (the endpoint itself is going away). */
  async closeAll(): Promise<void> {
    this.users.clear();
    await this.closeClient();
    // A release() may have started closing the client just before.
    await Promise.all(this.closing);
  }

  private async closeClient(): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    // Cleared first: a user arriving while this one closes gets a fresh client.
    this.client = undefined;
    const closing = closeClient(client, this.closeTimeoutMs);
    this.closing.add(closing);
    try {
      await closing;
    } finally {
      this.closing.delete(closing);
    }
  }
}

/**
 * QUIT when the client is ready (replies already in flight still arrive), otherwise drop the
 * connection attempt. Resolves once ioredis reports 'end', or after timeoutMs, dropping the socket.
 */
export async function closeClient(client: ClosableClient, timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
  const status = client.status;
  if (status === 'end') return;
  let onEnd: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => {
    onEnd = resolve;
    client.once('end', onEnd);
  });
  if (status === 'ready') client.quit().catch(() => client.disconnect());
  else client.disconnect();
  // With no socket open (waiting to connect or between retries), ioredis stops but emits no 'end'.
  if (status === 'wait' || status === 'reconnecting') {
    client.off('end', onEnd);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  try {
    if (await Promise.race([ended.then(() => false), timedOut])) client.disconnect();
  } finally {
    clearTimeout(timer);
    client.off('end', onEnd);
  }
}
