/**
 * What a connection that failed while opening says about its cause, in the words a user can act
 * on: a TLS-only port reached without TLS, a TLS handshake that failed. Shared by the
 * connections that speak RESP themselves (the replica link, the sink's pipelines, the
 * precheck's), which see the socket's state that ioredis hides.
 */

/** Errors of a TLS handshake with a peer that does not speak TLS on that port. */
export const NOT_TLS = /wrong version number|packet length too long|unknown protocol|record layer failure|http request/i;

/** Node's codes for a server certificate that does not verify. */
export const BAD_CERTIFICATE = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|CERT_UNTRUSTED|CERT_REJECTED)$/;

/**
 * A plain connection that the server dropped before answering anything: a TLS-only port does
 * this (it reads our first command as a broken TLS handshake). `what` is how it ended.
 */
export function tlsRequiredMessage(at: string, what: string): string {
  return `${at}: ${what} before answering anything, as a TLS-only port does to a plain connection: tick "Use TLS" in the endpoint (with the CA that signed the server's certificate)`;
}

/** A TLS handshake that failed, or a TLS connection refused at its first read (TLS 1.3 reports a missing client certificate only then). */
export function tlsFailedMessage(at: string, e: NodeJS.ErrnoException): string {
  if (BAD_CERTIFICATE.test(e.code ?? '')) {
    return `${at}: the server's TLS certificate was rejected: ${e.message} (give the endpoint the CA that signed it and the server name it was issued for)`;
  }
  if (NOT_TLS.test(e.message)) {
    return `${at}: TLS handshake failed: ${e.message} (the port answered, but not with TLS: untick "Use TLS" in the endpoint, or use the server's tls-port)`;
  }
  return `${at}: TLS handshake failed: ${e.message} (check the endpoint's TLS settings against the server's: CA, client certificate and key, server name)`;
}

/** TCP is up but the TLS handshake never completes: a plain-TCP Redis waits silently for the rest of a "command". */
export function tlsTimedOutMessage(at: string, ms: number): string {
  return `${at}: no TLS handshake after ${ms} ms (a plain-TCP port waits silently: untick "Use TLS" in the endpoint, or use the server's tls-port)`;
}
