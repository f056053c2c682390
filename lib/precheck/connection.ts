/**
 * A raw RESP connection to one server for the checks. Raw rather than ioredis so that a failed
 * connection can say exactly what went wrong (refused, TLS on one side only, a port that is not
 * Redis, credentials), and so that replica-only commands such as REPLCONF can be sent as a
 * replica would send them.
 */
import type net from 'node:net';
import { formatHostPort, openSocket, SocketFault, toSocketOptions, unansweredFault, type EndpointConfig } from '../endpoint';
import { encodeCommand, type CommandArg } from '../resp/encoder';
import { RespError } from '../resp/errors';
import { RespParser, type RespValue } from '../resp/parser';

/** Why a connection could not be opened; each maps to a finding id. */
export type OpenFailureKind = 'connection' | 'tls' | 'auth' | 'protocol';

export class OpenFailure extends Error {
  override readonly name = 'OpenFailure';
  constructor(
    readonly kind: OpenFailureKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** A socket that could not be opened, or was dropped before the server answered: a TLS problem on either side, or no connection. */
  static of(fault: SocketFault): OpenFailure {
    return new OpenFailure(fault.code === 'CONNECT' ? 'connection' : 'tls', fault.message, { cause: fault.cause });
  }
}

interface Pending {
  resolve: (v: RespValue) => void;
  reject: (err: Error) => void;
}

/**
 * One connection a check probes a node through: one command at a time, each with a deadline,
 * and an opening whose failure is classified for a finding (OpenFailure). Not the sink's
 * NodeConnection, which pipelines batches and has no deadline per command.
 */
export class ProbeConnection {
  readonly address: string;
  /** The reply to the PING of the opening, when it was an error (NOPERM for a user without +ping). */
  pingRefused: RespError | null = null;
  private readonly parser = new RespParser();
  private readonly pending: Pending[] = [];
  private failure: Error | null = null;
  private firstReply = true;

  private constructor(
    private readonly socket: net.Socket,
    host: string,
    port: number,
    private readonly isTls: boolean,
    private readonly timeoutMs: number,
  ) {
    this.address = formatHostPort(host, port);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const fault = unansweredFault(socket, isTls, this.address, e);
      this.fail(fault !== null ? OpenFailure.of(fault) : new OpenFailure('connection', `${this.address}: ${e.message}`));
    });
    socket.on('close', () => {
      const fault = unansweredFault(socket, isTls, this.address, null);
      this.fail(fault !== null ? OpenFailure.of(fault) : new OpenFailure('connection', `${this.address}: the server closed the connection`));
    });
  }

  /**
   * Connects (TLS when the endpoint says so), authenticates as the endpoint's user and PINGs.
   * Rejects with an OpenFailure naming the address and, for a refusal, the server's reply.
   */
  static async open(cfg: EndpointConfig, host: string, port: number): Promise<ProbeConnection> {
    const so = toSocketOptions(cfg, host, port);
    let socket: net.Socket;
    try {
      socket = await openSocket({ host, port, tls: so.tls ? so.connect : null, connectTimeoutMs: so.connectTimeoutMs });
    } catch (err) {
      throw err instanceof SocketFault ? OpenFailure.of(err) : err;
    }
    const conn = new ProbeConnection(socket, host, port, so.tls, so.connectTimeoutMs);
    try {
      if (so.auth !== undefined) {
        const { username, password } = so.auth;
        const r = await conn.call(username === undefined ? ['AUTH', password] : ['AUTH', username, password]);
        if (r instanceof RespError) {
          throw new OpenFailure('auth', `${conn.address}: authentication as ${username ?? '(default user)'} failed: ${r.message}`);
        }
      }
      const pong = await conn.call(['PING']);
      if (pong instanceof RespError) {
        if (pong.code === 'NOAUTH') throw new OpenFailure('auth', `${conn.address}: the server requires a password and none is configured: ${pong.message}`);
        // Denied PING is the replication check's business (a replica must PING), not a failed connection.
        if (pong.code !== 'NOPERM') throw new OpenFailure('connection', `${conn.address}: the server refuses this client: ${pong.message}`);
        conn.pingRefused = pong;
      }
      return conn;
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  /** One command; an error reply resolves as a RespError. Rejects when the connection fails or the reply takes too long. */
  call(args: CommandArg[]): Promise<RespValue> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new OpenFailure('connection', `${this.address}: no reply to ${String(args[0])} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(encodeCommand(args));
    });
  }

  /** As call, but an error reply rejects. */
  async ok(args: CommandArg[]): Promise<RespValue> {
    const r = await this.call(args);
    if (r instanceof RespError) throw r;
    return r;
  }

  close(): void {
    this.fail(new Error(`${this.address}: connection closed`));
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
      for (let v = this.parser.next(); v !== undefined; v = this.parser.next()) {
        this.firstReply = false;
        const p = this.pending.shift();
        if (p === undefined) throw new OpenFailure('protocol', `${this.address}: sent a reply nobody asked for`);
        p.resolve(v);
      }
    } catch (err) {
      this.fail(err instanceof OpenFailure ? err : this.notResp(chunk, err as Error));
    }
  }

  private notResp(chunk: Buffer, err: Error): OpenFailure {
    // 0x15 and 0x16 open a TLS record (alert, handshake): a TLS port answering a plain client.
    if (this.firstReply && !this.isTls && (chunk[0] === 0x15 || chunk[0] === 0x16)) {
      return new OpenFailure('tls', `${this.address}: answered with TLS bytes (record type 0x${chunk[0].toString(16)}) to a plain connection: this port requires TLS`);
    }
    const sample = JSON.stringify(chunk.toString('latin1', 0, 40));
    return new OpenFailure('protocol', `${this.address}: answered something that is not Redis (RESP): ${sample} (${err.message})`);
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.socket.destroy();
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}
