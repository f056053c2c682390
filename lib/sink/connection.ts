import net from 'node:net';
import tls from 'node:tls';
import { CommandWriter, type CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import { RespParser, type RespValue } from '../resp/parser';

export interface ConnectionOptions {
  host: string;
  port: number;
  tls?: tls.ConnectionOptions | null;
  username?: string;
  password?: string;
  connectTimeoutMs?: number;
}

/** What to do with one reply; `null` for replies nobody needs to look at (errors still count). */
export type ReplyHandler = ((reply: RespValue) => void) | null;

/**
 * One pipelined RESP2 connection to one destination node. Commands are encoded into a slab
 * and written once per tick; replies are matched to commands in order. No promise per
 * command: a batch of 100k commands costs one array of handlers and one `drain()`.
 * An error reply that has no handler is kept in `errors` for the caller to inspect.
 */
export class NodeConnection {
  readonly name: string;
  /** Error replies of commands sent with a null handler: [reply, index of the command since connect]. */
  errors: Array<{ error: RespError; tag: unknown }> = [];

  private socket: net.Socket | null = null;
  private readonly parser = new RespParser();
  private readonly writer = new CommandWriter(256 * 1024);
  private handlers: Array<ReplyHandler | { tag: unknown }> = [];
  private head = 0;
  private flushScheduled = false;
  private drainWaiters: Array<() => void> = [];
  private failure: Error | null = null;
  private readonly opts: ConnectionOptions;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
    this.name = `${opts.host}:${opts.port}`;
  }

  get pending(): number {
    return this.handlers.length - this.head;
  }

  /** The reason the connection is unusable, if it is. */
  get broken(): Error | null {
    return this.failure;
  }

  async connect(): Promise<void> {
    const { host, port } = this.opts;
    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        socket.setTimeout(0);
        resolve();
      };
      const socket = this.opts.tls ? tls.connect({ host, port, ...this.opts.tls }, onConnect) : net.connect({ host, port }, onConnect);
      this.socket = socket;
      socket.setNoDelay(true);
      socket.setTimeout(this.opts.connectTimeoutMs ?? 10_000, () => socket.destroy(new Error(`no connection to ${this.name} after ${this.opts.connectTimeoutMs ?? 10_000} ms`)));
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('error', (err) => {
        reject(err);
        this.fail(new Error(`${this.name}: ${err.message}`));
      });
      socket.on('close', () => this.fail(new Error(`${this.name}: the connection closed`)));
    });
    if (this.opts.password) {
      const r = await this.call(this.opts.username ? ['AUTH', this.opts.username, this.opts.password] : ['AUTH', this.opts.password]);
      if (r instanceof RespError) throw new Error(`${this.name}: authentication failed: ${r.message}`);
    }
  }

  /** Queues a command; its reply goes to `handler` (or, if an error with no handler, to `errors` with `tag`). */
  send(args: readonly CommandArg[], handler: ReplyHandler = null, tag: unknown = null): void {
    if (this.failure) throw this.failure;
    this.writer.write(args);
    this.handlers.push(handler ?? { tag });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (this.writer.length > 1024 * 1024) this.flush();
  }

  /** One command, awaited (for the occasional query; batches use send + drain). */
  call(args: readonly CommandArg[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      try {
        this.send(args, resolve);
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Resolves when every command sent so far has its reply; rejects if the connection broke. */
  drain(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending === 0) return Promise.resolve();
    this.flush();
    return new Promise((resolve, reject) => {
      this.drainWaiters.push(() => (this.failure ? reject(this.failure) : resolve()));
    });
  }

  close(): void {
    this.fail(new Error(`${this.name}: closed`));
    this.socket?.destroy();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.writer.length === 0 || !this.socket) return;
    this.socket.write(this.writer.take());
  }

  private onData(chunk: Buffer): void {
    this.parser.push(chunk);
    try {
      for (let v = this.parser.next(); v !== undefined; v = this.parser.next()) {
        const h = this.handlers[this.head];
        this.handlers[this.head++] = null;
        if (typeof h === 'function') h(v);
        else if (v instanceof RespError) this.errors.push({ error: v, tag: h?.tag ?? null });
      }
    } catch (err) {
      this.fail(new Error(`${this.name}: unreadable reply: ${(err as Error).message}`));
      this.socket?.destroy();
      return;
    }
    if (this.head === this.handlers.length) {
      this.handlers = [];
      this.head = 0;
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (let i = this.head; i < this.handlers.length; i++) {
      const h = this.handlers[i];
      if (typeof h === 'function') h(new RespError(err.message));
    }
    this.handlers = [];
    this.head = 0;
    for (const w of this.drainWaiters.splice(0)) w();
  }
}
