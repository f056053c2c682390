import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type tls from 'node:tls';
import { formatHostPort } from '../endpoint/config';
import { openSocket, SocketFault, unansweredFault } from '../endpoint/socket';
import { encodeCommand } from '../resp/encoder';
import { RespError } from '../resp/errors';
import { RespParser, type RespValue } from '../resp/parser';
import { parseInfo, keyspaceKeys } from '../server/info';
import { ReplicationError } from './errors';

/** Where a replica stands in a master's replication history. */
export interface ReplPosition {
  replid: string;
  /** Replication offset of the next byte wanted, minus one (what Redis calls the replica's offset). */
  offset: number;
}

/** What the link hands on, in order; the spool stores it as records. */
export type LinkRecord =
  | { kind: 'fullresync'; replid: string; offset: number }
  | { kind: 'continue'; replid: string; offset: number }
  | { kind: 'rdb'; data: Buffer }
  | { kind: 'rdb-end'; size: number }
  | { kind: 'stream'; data: Buffer };

const DOLLAR = 0x24;
/** What a PSYNC answered with an RDB straight away (see onData) resolves with: one object, compared by identity. */
const ANSWERED_AS_SYNC: RespValue = Buffer.from('SYNC');

export interface ReplicaLinkOptions {
  host: string;
  port: number;
  /** TLS options for tls.connect; null or absent for plain TCP. */
  tls?: tls.ConnectionOptions | null;
  username?: string;
  password?: string;
  connectTimeoutMs?: number;
  /** The port this replica announces (REPLCONF listening-port); masters only display it. */
  listeningPort?: number;
  ackIntervalMs?: number;
  /** A master sends at least a PING every repl-ping-replica-period (10 s); silence past this is a dead link. */
  idleTimeoutMs?: number;
  /** Resume from here (PSYNC replid offset+1); null asks for a full sync. */
  position: ReplPosition | null;
  /** The names PSYNC and SYNC have on this node, where the provider renamed them (see commandNames). */
  psyncCommand?: string;
  syncCommand?: string;
  /**
   * Ask for an RDB without keys and functions (`REPLCONF rdb-filter-only ""`, Redis 7.0+:
   * replconfCommand in replication.c; the master then streams it diskless). An older master
   * refuses the option ("Unrecognized REPLCONF option") and sends the whole RDB.
   */
  rdbFilterOnly?: boolean;
  /**
   * Receives everything in order, synchronously, as it arrives. It must store it at once
   * (the spool); an exception stops the link with that error.
   */
  onRecord: (record: LinkRecord) => void;
}

/** What the node serving the sync said of itself before PSYNC (INFO; null where INFO is refused). */
export interface SyncServer {
  /** A replica serves its own copy of its master's history (chained replication). */
  role: 'master' | 'replica';
  /** The replica's master and the state of its link to it. */
  master: string | null;
  masterLink: string | null;
  /** Keys in every db when the sync began: what a diskless transfer's progress is measured against. */
  keys: number;
}

/** `psync`: PSYNC sent, the master has not answered yet (it may hold a diskless sync back for seconds). */
export type LinkState = 'connecting' | 'handshake' | 'psync' | 'waiting-rdb' | 'rdb' | 'streaming' | 'closed';

const CRLF = Buffer.from('\r\n');
/** How REPLCONF GETACK arrives; found by a byte search, so the stream need not be parsed here. */
const GETACK = encodeCommand(['REPLCONF', 'GETACK', '*']);
const EOF_MARK_LEN = 40;

/**
 * One connection to a master, as a replica: handshake, PSYNC, the RDB in either transfer
 * form, then the command stream. Bytes are handed on as they arrive and never interpreted
 * beyond framing, so the link keeps up with any write rate. Reconnecting is the caller's
 * job (see ReplicaSession): a link ends once, with `close(err | null)`.
 */
export class ReplicaLink extends EventEmitter {
  state: LinkState = 'connecting';
  /** The replication id and the offset of the last byte received. */
  position: ReplPosition | null = null;
  /** RDB bytes received so far, and the announced size (null for a diskless transfer). */
  rdbReceived = 0;
  rdbSize: number | null = null;
  diskless = false;
  server: SyncServer | null = null;

  private socket: net.Socket | null = null;
  private readonly parser = new RespParser();
  private readonly replies: Array<(v: RespValue) => void> = [];
  private pendingLine = Buffer.alloc(0);
  private eofMark: Buffer | null = null;
  private eofTail = Buffer.alloc(0);
  private getackTail = Buffer.alloc(0);
  private watchdog: NodeJS.Timeout | null = null;
  private rejectStart: ((err: ReplicationError) => void) | null = null;
  private lastData = Date.now();
  private closed = false;
  private readonly opts: Required<Omit<ReplicaLinkOptions, 'tls' | 'username' | 'password' | 'position'>> & ReplicaLinkOptions;

  constructor(opts: ReplicaLinkOptions) {
    super();
    // `??` per field: an option passed as undefined still gets its default
    this.opts = {
      ...opts,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      listeningPort: opts.listeningPort ?? 0,
      ackIntervalMs: opts.ackIntervalMs ?? 1000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      psyncCommand: opts.psyncCommand ?? 'PSYNC',
      syncCommand: opts.syncCommand ?? 'SYNC',
      rdbFilterOnly: opts.rdbFilterOnly ?? false,
    };
  }

  /** Connects and runs the handshake; resolves once the master answered PSYNC. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.rejectStart = reject;
      const { host, port } = this.opts;
      const at = formatHostPort(host, port);
      const useTls = Boolean(this.opts.tls);
      openSocket(this.opts).then(
        (socket) => {
          if (this.closed) {
            socket.destroy();
            return;
          }
          this.socket = socket;
          // Nothing answered yet: see unansweredFault.
          const unanswered = (e: NodeJS.ErrnoException | null): SocketFault | null => (this.state === 'handshake' ? unansweredFault(socket, useTls, at, e) : null);
          socket.on('data', (chunk: Buffer) => this.onData(chunk));
          socket.on('error', (e: NodeJS.ErrnoException) => {
            const fault = unanswered(e);
            this.fail(fault !== null ? new ReplicationError(fault.code, fault.message) : new ReplicationError('CLOSED', `${at}: ${e.message}`));
          });
          socket.on('close', () => {
            const fault = unanswered(null);
            const err = fault !== null ? new ReplicationError(fault.code, fault.message) : new ReplicationError('CLOSED', `${at}: the master closed the connection (${this.where()})`);
            for (const r of this.replies.splice(0)) r(new RespError(err.message));
            this.fail(err);
          });
          this.state = 'handshake';
          this.startWatchdog();
          this.handshake().then(
            () => {
              this.rejectStart = null;
              resolve();
            },
            (err: unknown) => this.fail(err),
          );
        },
        (err: unknown) => {
          const fault = err as SocketFault;
          // Said to the user of a source, who may have the address wrong (the link retries on its own).
          const hint = fault.code === 'CONNECT' ? ' (check the host and port of the source endpoint, that the server runs, and that firewalls let this machine in)' : '';
          this.fail(new ReplicationError(fault.code, fault.message + hint));
        },
      );
    });
  }

  /** Ends the link with an error (a fault found downstream, in what it received). */
  abort(err: ReplicationError): void {
    this.fail(err);
  }

  /** Stops the link; no more records are handed on after this returns. */
  close(): Promise<void> {
    this.fail(null);
    const s = this.socket;
    if (s === null || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  private where(): string {
    switch (this.state) {
      case 'rdb':
        return `during the RDB transfer, after ${this.rdbReceived}${this.rdbSize === null ? '' : ` of ${this.rdbSize}`} bytes`;
      case 'streaming':
        return `while streaming, at offset ${this.position?.offset}`;
      case 'psync':
        return 'while waiting for the answer to PSYNC';
      default:
        return `during the ${this.state} phase`;
    }
  }

  /** Ends the link once: the start promise (if pending) rejects, and `close` is emitted. */
  private fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closed';
    if (this.watchdog) clearInterval(this.watchdog);
    this.socket?.destroy();
    const e = err === null ? null : ReplicationError.from(err);
    this.rejectStart?.(e ?? new ReplicationError('CLOSED', 'the link was closed before the handshake completed'));
    this.rejectStart = null;
    this.emit('close', e);
  }

  private send(args: Array<string | number>): void {
    this.socket?.write(encodeCommand(args));
  }

  private command(args: Array<string | number>): Promise<RespValue> {
    return new Promise((resolve) => {
      this.replies.push(resolve);
      this.send(args);
    });
  }

  private async handshake(): Promise<void> {
    const { host, port, username, password } = this.opts;
    const at = `${host}:${port}`;
    if (password !== undefined && password !== '') {
      const r = await this.command(username ? ['AUTH', username, password] : ['AUTH', password]);
      if (r instanceof RespError) throw new ReplicationError('AUTH', `${at}: authentication as ${username || '(default user)'} failed: ${r.message} (check the username and password of the source endpoint)`);
    }
    const pong = await this.command(['PING']);
    if (pong instanceof RespError) throw this.refused(at, 'PING', pong);
    this.server = await this.describeServer();
    const lp = await this.command(['REPLCONF', 'listening-port', this.opts.listeningPort]);
    if (lp instanceof RespError) throw this.refused(at, 'REPLCONF', lp);
    // Old masters reject the capa option; then they send neither EOF-marked RDBs nor PSYNC2 replies.
    await this.command(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']);
    // after capa eof: a master refuses a filter to a replica that cannot take a diskless transfer
    if (this.opts.rdbFilterOnly) await this.command(['REPLCONF', 'rdb-filter-only', '']);
    const pos = this.opts.position;
    const psync = this.opts.psyncCommand;
    const reply = await this.psyncReply(pos ? [psync, pos.replid, pos.offset + 1] : [psync, '?', -1], false);
    if (reply instanceof RespError) {
      const refusal = this.refused(at, psync, reply);
      // Any other -ERR means no PSYNC here (renamed, or a master before 2.8): Redis's replica
      // then falls back to SYNC (PSYNC_NOT_SUPPORTED in slaveTryPartialResynchronization).
      if (refusal.code !== 'REFUSED' || !/^ERR/.test(reply.message)) throw refusal;
      await this.psyncReply([this.opts.syncCommand], true);
    }
  }

  /** Best effort: a replication-only ACL user or a renamed INFO leaves it unknown. */
  private async describeServer(): Promise<SyncServer | null> {
    const [replication, keyspace] = await Promise.all([this.command(['INFO', 'replication']), this.command(['INFO', 'keyspace'])]);
    if (!Buffer.isBuffer(replication) || !Buffer.isBuffer(keyspace)) return null;
    const r = parseInfo(replication.toString());
    const replica = r.role === 'slave';
    return {
      role: replica ? 'replica' : 'master',
      master: replica ? `${r.master_host}:${r.master_port}` : null,
      masterLink: replica ? (r.master_link_status ?? null) : null,
      keys: keyspaceKeys(parseInfo(keyspace.toString())),
    };
  }

  /**
   * What a refusal means. The transient ones are those Redis's own replica retries
   * (PSYNC_TRY_LATER in slaveTryPartialResynchronization: NOMASTERLINK, LOADING), their
   * wording before 5.0 ("Can't SYNC while not connected with my master"), MASTERDOWN (a
   * replica with replica-serve-stale-data no) and a failed BGSAVE (fork or disk trouble on
   * the master: startBgsaveForReplication).
   */
  private refused(at: string, what: string, r: RespError): ReplicationError {
    const m = r.message;
    if (/^(NOAUTH|WRONGPASS)/.test(m)) return new ReplicationError('AUTH', `${at}: ${what} refused: ${m} (the server requires a password: set the username and password of the source endpoint)`);
    if (/^NOPERM/.test(m)) return new ReplicationError('NOPERM', `${at}: ${what} refused: ${m} (the user needs the permissions of a replica: +psync +replconf +ping)`);
    if (/^LOADING/.test(m)) return new ReplicationError('LOADING', `${at}: the master is loading its data set (${what}: ${m})`);
    if (/^(NOMASTERLINK|MASTERDOWN)|while not connected with my master/.test(m)) {
      return new ReplicationError('NOMASTERLINK', `${at}: this node is a replica whose link to its own master is down (${what}: ${m}): check that master, or point the endpoint at a node that serves the data`);
    }
    if (/BGSAVE failed/.test(m)) return new ReplicationError('SYNC_FAILED', `${at}: the master could not produce its snapshot (${m}): see its log (fork or disk trouble)`);
    // managed services rename PSYNC and SYNC (rename-command), or hand out a renamed one on request
    if (/^ERR unknown command/i.test(m) && what === 'the full sync') {
      return new ReplicationError('REFUSED', `${at}: neither ${this.opts.psyncCommand} nor ${this.opts.syncCommand} is known here (${m}): where the provider renamed them, set the names in the source node (Renamed PSYNC / SYNC); where it refuses replication, use another kind of source`);
    }
    return new ReplicationError('REFUSED', `${at}: ${what} refused: ${m}`);
  }

  /**
   * Sends PSYNC (or SYNC) and switches the framing by its reply: the raw RDB payload after
   * +FULLRESYNC (and always after SYNC), the command stream after +CONTINUE.
   */
  private psyncReply(args: Array<string | number>, sync: boolean): Promise<RespValue> {
    return new Promise((resolve) => {
      if (sync) {
        this.beginSync();
        this.send(args);
        resolve('SYNC');
        return;
      }
      this.replies.push((v) => {
        if (v === ANSWERED_AS_SYNC) this.beginSync();
        else if (typeof v === 'string') this.onPsyncStatus(v);
        else this.state = 'handshake';
        resolve(v);
      });
      this.send(args);
      this.state = 'psync';
    });
  }

  /** SYNC has no status reply: the RDB follows directly, and no position is known. */
  private beginSync(): void {
    this.position = { replid: '?', offset: 0 };
    this.opts.onRecord({ kind: 'fullresync', replid: '?', offset: 0 });
    this.state = 'waiting-rdb';
  }

  private onPsyncStatus(status: string): void {
    const at = `${this.opts.host}:${this.opts.port}`;
    const words = status.split(' ');
    if (words[0] === 'FULLRESYNC' && words.length === 3 && /^\d+$/.test(words[2])) {
      this.position = { replid: words[1], offset: Number(words[2]) };
      this.state = 'waiting-rdb';
      this.opts.onRecord({ kind: 'fullresync', replid: words[1], offset: Number(words[2]) });
      this.emit('fullresync', this.position);
    } else if (words[0] === 'CONTINUE' && this.opts.position) {
      // PSYNC2: after a failover the new master continues the same history under its own id.
      const replid = words[1] ?? this.opts.position.replid;
      this.position = { replid, offset: this.opts.position.offset };
      this.state = 'streaming';
      this.opts.onRecord({ kind: 'continue', replid, offset: this.position.offset });
      this.emit('continue', this.position);
      this.sendAck(this.position.offset);
    } else {
      throw new ReplicationError('PROTOCOL', `${at}: unexpected PSYNC reply "${status.slice(0, 100)}"`);
    }
    const rest = this.parser.takeBuffered();
    if (rest.length > 0) this.onData(rest);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastData = Date.now();
    try {
      if (this.state === 'psync' && this.parser.bufferedBytes === 0) {
        // A stock master tells PSYNC from SYNC by the name the replica sent (syncCommand in
        // replication.c compares argv[0] with "psync"): a renamed PSYNC is served as SYNC,
        // with the RDB's header and no +FULLRESYNC before it.
        const data = skipKeepAlives(chunk);
        if (data.length > 0 && data[0] === DOLLAR) {
          (this.replies.shift() as (v: RespValue) => void)(ANSWERED_AS_SYNC);
          this.rdbHeader(data);
          return;
        }
      }
      switch (this.state) {
        case 'handshake':
        case 'psync':
          this.parser.push(this.parser.bufferedBytes === 0 ? skipKeepAlives(chunk) : chunk);
          for (let v = this.parser.next(); v !== undefined; v = this.state === 'handshake' || this.state === 'psync' ? this.nextReply() : undefined) {
            const reply = this.replies.shift();
            if (reply === undefined) throw new ReplicationError('PROTOCOL', `${this.opts.host}:${this.opts.port}: unexpected reply during the handshake`);
            reply(v);
          }
          return;
        case 'waiting-rdb':
          this.rdbHeader(chunk);
          return;
        case 'rdb':
          this.rdbData(chunk);
          return;
        case 'streaming':
          this.streamData(chunk);
          return;
        default:
          return;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  /** The next handshake reply, past any keep-alive newlines that followed the last one. */
  private nextReply(): RespValue | undefined {
    if (this.parser.bufferedBytes > 0) {
      const rest = this.parser.takeBuffered();
      this.parser.push(skipKeepAlives(rest));
    }
    return this.parser.next();
  }

  /** Newlines keep the link alive while the master forks; then `$<len>` or `$EOF:<mark>`. */
  private rdbHeader(chunk: Buffer): void {
    const data = skipKeepAlives(this.pendingLine.length ? Buffer.concat([this.pendingLine, chunk]) : chunk);
    const eol = data.indexOf(CRLF);
    if (eol < 0) {
      if (data.length > 128) throw this.badHeader(data);
      this.pendingLine = Buffer.from(data);
      return;
    }
    this.pendingLine = Buffer.alloc(0);
    const line = data.toString('latin1', 0, eol);
    const rest = data.subarray(eol + 2);
    if (line.startsWith('$EOF:') && line.length === 5 + EOF_MARK_LEN) {
      this.eofMark = Buffer.from(line.slice(5), 'latin1');
      this.diskless = true;
    } else if (/^\$\d+$/.test(line)) {
      this.rdbSize = Number(line.slice(1));
    } else if (line.startsWith('-')) {
      throw this.refused(`${this.opts.host}:${this.opts.port}`, 'the full sync', new RespError(line.slice(1)));
    } else {
      throw this.badHeader(data);
    }
    this.state = 'rdb';
    this.emit('rdb-begin', { size: this.rdbSize, diskless: this.diskless });
    if (rest.length > 0) this.rdbData(rest);
  }

  private badHeader(data: Buffer): ReplicationError {
    return new ReplicationError('PROTOCOL', `${this.opts.host}:${this.opts.port}: expected the RDB header ($<length> or $EOF:<mark>) but got ${JSON.stringify(data.toString('latin1', 0, 40))}`);
  }

  private rdbData(chunk: Buffer): void {
    if (this.eofMark === null) {
      const size = this.rdbSize as number;
      const n = Math.min(chunk.length, size - this.rdbReceived);
      if (n > 0) this.opts.onRecord({ kind: 'rdb', data: chunk.subarray(0, n) });
      this.rdbReceived += n;
      if (this.rdbReceived === size) this.rdbDone(chunk.subarray(n));
      return;
    }
    // Diskless: the end is a 40-byte mark, so the last 40 bytes are held back until more
    // data shows they were not it.
    const data = this.eofTail.length ? Buffer.concat([this.eofTail, chunk]) : chunk;
    const at = data.indexOf(this.eofMark);
    if (at >= 0) {
      if (at > 0) this.opts.onRecord({ kind: 'rdb', data: data.subarray(0, at) });
      this.rdbReceived += at;
      this.eofTail = Buffer.alloc(0);
      this.rdbDone(data.subarray(at + EOF_MARK_LEN));
      return;
    }
    const keep = Math.min(EOF_MARK_LEN - 1, data.length);
    const pass = data.length - keep;
    if (pass > 0) this.opts.onRecord({ kind: 'rdb', data: data.subarray(0, pass) });
    this.rdbReceived += pass;
    this.eofTail = Buffer.from(data.subarray(pass));
  }

  private rdbDone(rest: Buffer): void {
    this.opts.onRecord({ kind: 'rdb-end', size: this.rdbReceived });
    this.state = 'streaming';
    this.emit('rdb-end', this.rdbReceived);
    // A diskless master starts the stream only on an ACK that arrives after it has seen its
    // RDB child exit; one sent right away is often early. A few more cut the wait for the
    // next periodic ACK (up to a second) to a few milliseconds.
    this.sendAck(this.position?.offset ?? 0);
    for (const ms of [20, 100, 300]) setTimeout(() => this.state === 'streaming' && this.sendAck(this.position?.offset ?? 0), ms).unref();
    if (rest.length > 0) this.streamData(rest);
  }

  private streamData(chunk: Buffer): void {
    const pos = this.position as ReplPosition;
    this.opts.onRecord({ kind: 'stream', data: chunk });
    const before = pos.offset;
    pos.offset += chunk.length;
    // GETACK asks for an ACK now (WAIT, failover); it is answered with the offset before it,
    // as Redis does.
    const hay = this.getackTail.length ? Buffer.concat([this.getackTail, chunk]) : chunk;
    const at = hay.indexOf(GETACK);
    if (at >= 0) this.sendAck(before - this.getackTail.length + at);
    this.getackTail = Buffer.from(hay.subarray(Math.max(0, hay.length - (GETACK.length - 1))));
  }

  /** ACKs once a second while streaming (the master's repl-timeout needs them), and detects silence. */
  private startWatchdog(): void {
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastData > this.opts.idleTimeoutMs) {
        this.fail(new ReplicationError('TIMEOUT', `${this.opts.host}:${this.opts.port}: no data from the master for ${this.opts.idleTimeoutMs} ms (${this.where()})`));
        return;
      }
      if (this.state === 'streaming') this.sendAck(this.position?.offset ?? 0);
    }, this.opts.ackIntervalMs);
    this.watchdog.unref();
  }

  private sendAck(offset: number): void {
    this.send(['REPLCONF', 'ACK', offset]);
  }
}

/**
 * Drops the bare newlines a master writes to a replica that waits for its sync: before
 * +FULLRESYNC while a BGSAVE is pending (diskless delay, another BGSAVE running:
 * replicationCron in replication.c), and before the payload. A RESP reply never starts
 * with \n, so at a reply boundary they cannot be anything else (Redis's replica skips
 * them the same way: slaveTryPartialResynchronization, readSyncBulkPayload).
 */
function skipKeepAlives(data: Buffer): Buffer {
  let i = 0;
  while (i < data.length && data[i] === 0x0a) i++;
  return i === 0 ? data : data.subarray(i);
}
