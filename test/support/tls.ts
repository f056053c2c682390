import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RedisConfig } from '../harness';

const execFileAsync = promisify(execFile);

/** The files of makeTestCertificates and what a server and a client take of them. */
export interface TestCertificates {
  dir: string;
  /** PEM texts: the CA's certificate, and the one certificate with its key. */
  pem: { ca: string; cert: string; key: string };
  /** redis-server settings for TLS on `port` with this certificate; tls-auth-clients as given. */
  serverConfig(port: number, authClients: 'yes' | 'no' | 'optional'): RedisConfig;
  remove(): void;
}

/**
 * A private CA and one certificate for the DNS name redis.test (so that a name check runs
 * against 127.0.0.1), for servers and clients alike, made with openssl in a new temporary
 * folder (`remove()` deletes it).
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(path.join(tmpdir(), 'redis-sync-tls-'));
  const ssl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=redis-sync test CA');
  writeFileSync(path.join(dir, 'node.ext'), 'subjectAltName=DNS:redis.test\nextendedKeyUsage=serverAuth,clientAuth\n');
  await ssl('req', ...ec, '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=node');
  await ssl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'node.crt', '-days', '2', '-extfile', 'node.ext');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    pem: { ca: read('ca.crt'), cert: read('node.crt'), key: read('node.key') },
    serverConfig: (port, authClients) => ({
      'tls-port': String(port),
      'tls-cert-file': path.join(dir, 'node.crt'),
      'tls-key-file': path.join(dir, 'node.key'),
      'tls-ca-cert-file': path.join(dir, 'ca.crt'),
      'tls-auth-clients': authClients,
    }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
