import net from 'node:net';
import tls from 'node:tls';
import { SyncError } from '../errors';
import { formatHostPort } from './config';

/** One node to open a raw RESP connection to (the replica link, the sink's pipelines, the precheck's probes). */
export interface SocketTarget {
  host: string;
  port: number;
  /** Options for tls.connect; null or absent for plain TCP. */
  tls?: tls.ConnectionOptions | null;
  /** Give up on TCP and the TLS handshake after this long. */
  connectTimeoutMs: number;
}

/**
 * Why a socket could not be opened or died before the server answered anything: no connection
 * (CONNECT), a TLS handshake that failed or never finished (TLS), a TLS-only port reached
 * without TLS (TLS_REQUIRED). Each connection turns it into its own error type, same code.
 */
export type SocketFaultCode = 'CONNECT' | 'TLS' | 'TLS_REQUIRED';

/** `cause`: Node's error, where there is one (its message says what TLS disliked). */
export class SocketFault extends SyncError<SocketFaultCode> {
  override readonly name = 'SocketFault';
}

/**
 * As Redis keeps its own connections alive (networking.c, createClient: connKeepAlive with
 * tcp-keepalive, 300 s by default): a peer gone without a FIN (a host down, a NAT entry
 * dropped) then ends in an error rather than a connection idle for ever.
 */
const KEEPALIVE_MS = 300_000;

/**
 * Opens a TCP or TLS socket: resolves once it is connected (with TLS, once the handshake is
 * done), with no delay (commands are written whole, often one at a time) and keepalive on.
 * Rejects with a SocketFault naming the address: CONNECT when TCP fails or times out, TLS
 * when TCP is up but the handshake fails or times out. The caller's own 'error' listener must
 * be on before it gives the event loop a turn.
 */
export function openSocket(target: SocketTarget): Promise<net.Socket> {
  const { host, port, connectTimeoutMs } = target;
  const at = formatHostPort(host, port);
  const useTls = Boolean(target.tls);
  return new Promise((resolve, reject) => {
    let tcpUp = false;
    // host and port last: TLS options made for another node (an endpoint's) must not redirect the socket.
    const socket = useTls ? tls.connect({ ...target.tls, host, port }) : net.connect({ host, port });
    const settle = (fault: SocketFault | null): void => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      if (fault !== null) {
        socket.destroy();
        reject(fault);
        return;
      }
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      resolve(socket);
    };
    socket.once('connect', () => {
      tcpUp = true;
      if (!useTls) settle(null);
    });
    if (useTls) socket.once('secureConnect', () => settle(null));
    socket.setTimeout(connectTimeoutMs, () => {
      settle(useTls && tcpUp ? new SocketFault('TLS', tlsTimedOutMessage(at, connectTimeoutMs)) : new SocketFault('CONNECT', `${at}: no connection after ${connectTimeoutMs} ms`));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      settle(useTls && tcpUp ? new SocketFault('TLS', tlsFailedMessage(at, e), { cause: e }) : new SocketFault('CONNECT', `${at}: ${e.message}`, { cause: e }));
    });
  });
}

/**
 * What it means when a socket openSocket gave (`at`, its address) ends (`err`, or null for a close) before the
 * server answered anything: a plain connection dropped then met a TLS-only port (it reads our
 * first command as a broken handshake); a TLS one refused at its first read met a server that
 * wants a client certificate (TLS 1.3 says so only then). Null when neither applies: the
 * caller's own wording for a lost connection fits.
 */
export function unansweredFault(socket: net.Socket, useTls: boolean, at: string, err: NodeJS.ErrnoException | null): SocketFault | null {
  if (socket.bytesRead > 0) return null;
  if (!useTls) return new SocketFault('TLS_REQUIRED', tlsRequiredMessage(at, err === null ? 'the server closed the connection' : err.message), { cause: err ?? undefined });
  if (err !== null && /alert|ssl|tls/i.test(err.message)) return new SocketFault('TLS', tlsFailedMessage(at, err), { cause: err });
  return null;
}

// What a failed opening says about its cause, in the words a user can act on.

/** Errors of a TLS handshake with a peer that does not speak TLS on that port. */
const NOT_TLS = /wrong version number|packet length too long|unknown protocol|record layer failure|http request/i;

/** Node's codes for a server certificate that does not verify. */
const BAD_CERTIFICATE = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|CERT_UNTRUSTED|CERT_REJECTED)$/;

/**
 * A plain connection that the server dropped before answering anything: a TLS-only port does
 * this (it reads our first command as a broken TLS handshake). `what` is how it ended.
 */
function tlsRequiredMessage(at: string, what: string): string {
  return `${at}: ${what} before answering anything, as a TLS-only port does to a plain connection: tick "Use TLS" in the endpoint (with the CA that signed the server's certificate)`;
}

/** A TLS handshake that failed, or a TLS connection refused at its first read (TLS 1.3 reports a missing client certificate only then). */
function tlsFailedMessage(at: string, e: NodeJS.ErrnoException): string {
  if (BAD_CERTIFICATE.test(e.code ?? '')) {
    return `${at}: the server's TLS certificate was rejected: ${e.message} (give the endpoint the CA that signed it and the server name it was issued for)`;
  }
  if (NOT_TLS.test(e.message)) {
    return `${at}: TLS handshake failed: ${e.message} (the port answered, but not with TLS: untick "Use TLS" in the endpoint, or use the server's tls-port)`;
  }
  return `${at}: TLS handshake failed: ${e.message} (check the endpoint's TLS settings against the server's: CA, client certificate and key, server name)`;
}

/** TCP is up but the TLS handshake never completes: a plain-TCP Redis waits silently for the rest of a "command". */
function tlsTimedOutMessage(at: string, ms: number): string {
  return `${at}: no TLS handshake after ${ms} ms (a plain-TCP port waits silently: untick "Use TLS" in the endpoint, or use the server's tls-port)`;
}
