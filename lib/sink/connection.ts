import type net from 'node:net';
import type tls from 'node:tls';
import { openSocket, SocketFault, unansweredFault } from '../endpoint/socket';
import { CommandWriter, type CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import { RespParser, type RespValue } from '../resp/parser';
import { SinkError } from './errors';

export interface ConnectionOptions {
  host: string;
  port: number;
  tls?: tls.ConnectionOptions | null;
  username?: string;
  password?: string;
  connectTimeoutMs?: number;
}

/** Answered commands at the front of the reply queue that make it worth moving the rest down. */
const COMPACT_AFTER = 4096;

/** What to do with one reply; `null` for replies nobody needs to look at (errors still count). */
export type ReplyHandler = ((reply: RespValue) => void) | null;

/** An error reply nobody handled, with the number of the command it answered (counted from connect). */
export interface ReplyFailure {
  error: RespError;
  tag: unknown;
  index: number;
  /** The connection's node, host:port: who refused. */
  node: string;
}

/**
 * One pipelined RESP2 connection to one destination node. Commands are encoded into a slab
 * and written once per tick; replies are matched to commands in order. No promise per
 * command: a batch of 100k commands costs two array slots each and one `replied()`.
 * Commands are numbered from connect (`sent`), so several batches can be in flight on one
 * connection and each can wait for, and take the errors of, its own commands.
 */
export class NodeConnection {
  readonly name: string;
  /** Commands written so far; `replied(n)` waits for the replies of the first n. */
  sent = 0;

  private socket: net.Socket | null = null;
  private readonly parser = new RespParser();
  private readonly writer = new CommandWriter(256 * 1024);
  /** Per command not yet answered (from `head`): its handler, or its tag for an error reply. */
  private handlers: ReplyHandler[] = [];
  private tags: unknown[] = [];
  private head = 0;
  private received = 0;
  private failures: ReplyFailure[] = [];
  private flushScheduled = false;
  /** Waiting for the reply to command number `count`, in increasing order of count. */
  private waiters: Array<{ count: number; settle: () => void }> = [];
  private failure: Error | null = null;
  private readonly opts: ConnectionOptions;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
    this.name = `${opts.host}:${opts.port}`;
  }

  get pending(): number {
    return this.sent - this.received;
  }

  /** The reason the connection is unusable, if it is. */
  get broken(): Error | null {
    return this.failure;
  }

  /**
   * Connects, authenticates and PINGs: resolves once the server answered. A failure names its
   * cause as a SinkError (see SinkError.permanent for the ones no retry cures).
   */
  async connect(): Promise<void> {
    const at = this.name;
    const useTls = Boolean(this.opts.tls);
    let socket: net.Socket;
    try {
      socket = await openSocket({ ...this.opts, connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000 });
    } catch (err) {
      const fault = err instanceof SocketFault ? new SinkError(err.code, err.message) : err;
      this.fail(fault as Error);
      throw fault;
    }
    this.socket = socket;
    let opening = true;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const unanswered = opening ? unansweredFault(socket, useTls, at, err) : null;
      if (unanswered !== null) this.fail(new SinkError(unanswered.code, unanswered.message));
      else this.fail(opening ? new SinkError('CONNECT', `${at}: ${err.message}`) : new Error(`${at}: ${err.message}`));
    });
    socket.on('close', () => {
      const unanswered = opening && !useTls ? unansweredFault(socket, useTls, at, null) : null;
      this.fail(unanswered !== null ? new SinkError(unanswered.code, unanswered.message) : new Error(`${at}: the connection closed`));
    });
    if (this.opts.password) {
      const user = this.opts.username;
      const r = await this.ask(user ? ['AUTH', user, this.opts.password] : ['AUTH', this.opts.password]);
      if (r instanceof RespError) throw new SinkError('AUTH', `${at}: authentication as ${user || '(default user)'} failed: ${r.message} (check the username and password of the destination endpoint)`);
    }
    const pong = await this.ask(['PING']);
    opening = false;
    // a user denied PING alone may still write: what it may not do shows with the writes
    if (pong instanceof RespError && pong.code !== 'NOPERM') {
      if (pong.code === 'NOAUTH') throw new SinkError('AUTH', `${at}: the server requires a password and none is configured: ${pong.message} (set the username and password of the destination endpoint)`);
      if (pong.code === 'LOADING') throw new SinkError('LOADING', `${at}: the server is loading its data set: ${pong.message}`);
      throw new SinkError('REFUSED', `${at}: the server refuses this client: ${pong.message}`);
    }
  }

  /** A command of the opening; a connection that broke meanwhile throws its fault rather than answering. */
  private async ask(args: readonly CommandArg[]): Promise<RespValue> {
    const r = await this.call(args);
    if (this.failure) throw this.failure;
    return r;
  }

  /** Queues a command; its reply goes to `handler` (or, if an error with no handler, to the failures with `tag`). */
  send(args: readonly CommandArg[], handler: ReplyHandler = null, tag: unknown = null): void {
    if (this.failure) throw this.failure;
    this.writer.write(args);
    this.queued(handler, tag);
  }

  /** `send([name, ...args])` without building that array. */
  sendNamed(name: string, args: readonly CommandArg[], tag: unknown): void {
    if (this.failure) throw this.failure;
    this.writer.writeNamed(name, args);
    this.queued(null, tag);
  }

  /** One command, awaited (for the occasional query; batches use send + replied). */
  call(args: readonly CommandArg[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      try {
        this.send(args, resolve);
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Resolves when the first `count` commands (default: all sent so far) have their replies; rejects if the connection broke. */
  replied(count = this.sent): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.received >= count) return Promise.resolve();
    this.flush();
    return new Promise((resolve, reject) => {
      const settle = (): void => (this.failure ? reject(this.failure) : resolve());
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1].count > count) i--;
      this.waiters.splice(i, 0, { count, settle });
    });
  }

  /** Records an error found by a reply handler (e.g. inside an EXEC's replies) against the command being answered. */
  reportError(error: RespError, tag: unknown): void {
    this.failures.push({ error, tag, index: this.received - 1, node: this.name });
  }

  /** Takes the unhandled error replies of the first `count` commands. */
  takeFailures(count = this.sent): ReplyFailure[] {
    let n = 0;
    while (n < this.failures.length && this.failures[n].index < count) n++;
    return n === 0 ? [] : this.failures.splice(0, n);
  }

  close(): void {
    this.fail(new Error(`${this.name}: closed`));
    this.socket?.destroy();
  }

  private queued(handler: ReplyHandler, tag: unknown): void {
    this.handlers.push(handler);
    this.tags.push(tag);
    this.sent++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (this.writer.length > 1024 * 1024) this.flush();
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
        const tag = this.tags[this.head];
        this.handlers[this.head] = null;
        this.tags[this.head++] = null;
        this.received++;
        if (h !== null) h(v);
        else if (v instanceof RespError) this.failures.push({ error: v, tag, index: this.received - 1, node: this.name });
      }
    } catch (err) {
      this.fail(new Error(`${this.name}: unreadable reply: ${(err as Error).message}`));
      this.socket?.destroy();
      return;
    }
    if (this.head === this.handlers.length) {
      this.handlers = [];
      this.tags = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.handlers.length) {
      // with batches in flight the queue may never run empty (a whole full sync): without this
      // the arrays would grow by every command ever sent, each growth a copy in old space
      this.handlers = this.handlers.slice(this.head);
      this.tags = this.tags.slice(this.head);
      this.head = 0;
    }
    let done = 0;
    while (done < this.waiters.length && this.waiters[done].count <= this.received) done++;
    if (done > 0) for (const w of this.waiters.splice(0, done)) w.settle();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (let i = this.head; i < this.handlers.length; i++) {
      const h = this.handlers[i];
      if (h !== null) h(new RespError(err.message));
    }
    this.handlers = [];
    this.tags = [];
    this.head = 0;
    for (const w of this.waiters.splice(0)) w.settle();
  }
}
