import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { Cluster, Redis } from 'ioredis';
import {
  createClient,
  parseSeeds,
  readEndpointSettings,
  resolveAuth,
  toIoRedisOptions,
  toSocketOptions,
  validateEndpointConfig,
  type EndpointConfig,
  type EndpointHandle,
  type SocketOptions,
} from '../lib/endpoint';
import { HOST, startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { freePort } from './support/net';
import {
  builtNode,
  editorDefinition,
  getNode,
  loadFlow,
  messages,
  startNodeRed,
  stopNodeRed,
  unloadFlow,
  type EditorDefinition,
  type FlowNode,
} from './support/node-red';

const execFileAsync = promisify(execFile);

const standalone = (extra: Partial<EndpointConfig> = {}): EndpointConfig =>
  ({ mode: 'standalone', host: HOST, port: 6379, ...extra }) as EndpointConfig;

/** Resolves 'ready', or the message of the first error the client reports (later retries' errors are ignored). */
function outcome(client: Redis | Cluster): Promise<string> {
  return new Promise((resolve) => {
    client.once('ready', () => resolve('ready'));
    client.on('error', (err: Error) => resolve(err.message));
  });
}

/** Connections the server has, not counting the short-lived one that asks. */
async function connectionCount(server: RedisServer): Promise<number> {
  const list = String(await server.command('CLIENT', 'LIST'));
  return list
    .trim()
    .split('\n')
    .filter((line) => !/ cmd=client(\|list)? /.test(line)).length;
}

/** One command over a raw socket opened from toSocketOptions, AUTH first if it says so; its reply as text. */
async function rawCommand(opts: SocketOptions, ...command: string[]): Promise<string> {
  const socket = opts.tls ? tls.connect(opts.connect) : net.connect(opts.connect);
  try {
    await once(socket, opts.tls ? 'secureConnect' : 'connect');
    const encode = (args: string[]): string =>
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    const auth = opts.auth === undefined ? [] : [['AUTH', ...(opts.auth.username === undefined ? [] : [opts.auth.username]), opts.auth.password]];
    const commands = [...auth, command];
    socket.write(commands.map(encode).join(''));
    let received = '';
    for await (const chunk of socket) {
      received += String(chunk);
      const replies = parseReplies(received);
      if (replies.length >= commands.length) return replies[commands.length - 1];
    }
    throw new Error(`connection closed after ${JSON.stringify(received)}`);
  } finally {
    socket.destroy();
  }
}

/** The complete simple, error, integer and bulk replies at the start of text (enough for these tests). */
function parseReplies(text: string): string[] {
  const replies: string[] = [];
  let pos = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', pos);
    if (eol === -1) return replies;
    const line = text.slice(pos + 1, eol);
    if (text[pos] !== '$') {
      replies.push(text.slice(pos, eol));
      pos = eol + 2;
      continue;
    }
    const end = eol + 2 + Number(line);
    if (text.length < end + 2) return replies;
    replies.push(text.slice(eol + 2, end));
    pos = end + 2;
  }
}

describe('redis-endpoint', () => {
  describe('parseSeeds', () => {
    it('reads host:port lists separated by commas, spaces or new lines, IPv6 in brackets, without duplicates', () => {
      assert.deepEqual(parseSeeds(' 10.0.0.1:7000, redis-a.internal:7001\n[::1]:7002  10.0.0.1:7000,'), [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-a.internal', port: 7001 },
        { host: '::1', port: 7002 },
      ]);
    });

    it('names the bad entry', () => {
      const cases: Array<[string, RegExp]> = [
        ['', /^Error: no seeds/],
        ['  ,\n', /^Error: no seeds/],
        ['h1:7000, h2', /^Error: seed 2 "h2": expected host:port$/],
        ['h1:7000 h2:70000', /^Error: seed 2 "h2:70000": port must be an integer from 1 to 65535$/],
        ['h1:0', /^Error: seed 1 "h1:0": port/],
        ['h1:x', /^Error: seed 1 "h1:x": port/],
        [':7000', /^Error: seed 1 ":7000": host is required$/],
        ['::1:7000', /^Error: seed 1 "::1:7000": expected host:port \(put an IPv6 address in brackets/],
        ['[h1]:7000', /^Error: seed 1 "\[h1\]:7000": host in brackets is not an IPv6 address$/],
        ['user@h1:7000', /^Error: seed 1 "user@h1:7000": host "user@h1" is not a hostname/],
      ];
      for (const [text, expected] of cases) assert.throws(() => parseSeeds(text), expected, JSON.stringify(text));
    });
  });

  describe('validateEndpointConfig', () => {
    it('accepts complete standalone and cluster configs', () => {
      assert.deepEqual(validateEndpointConfig(standalone({ db: 3, connectTimeoutMs: 500 })), []);
      assert.deepEqual(validateEndpointConfig({ mode: 'cluster', seeds: [{ host: '::1', port: 7000 }] }), []);
    });

    it('names each field that is wrong', () => {
      assert.deepEqual(validateEndpointConfig(standalone({ host: '', port: 0, db: -1, connectTimeoutMs: 0 })), [
        'host: is required',
        'port: must be an integer from 1 to 65535, got 0',
        'db: must be an integer of 0 or more, got -1',
        'connectTimeoutMs: must be a positive integer of milliseconds, got 0',
      ]);
      assert.match(validateEndpointConfig(standalone({ host: 'redis:6379' }))[0], /^host: .*the port has a field of its own/);
      assert.deepEqual(validateEndpointConfig({ mode: 'cluster', seeds: [] }), ['seeds: at least one host:port is required']);
      assert.deepEqual(validateEndpointConfig({ mode: 'cluster', seeds: [{ host: 'a', port: 1 }], db: 2 } as EndpointConfig), [
        'db: a cluster has only database 0, got 2',
      ]);
      assert.deepEqual(validateEndpointConfig({ mode: 'sentinel' } as unknown as EndpointConfig), [
        'mode: must be "standalone" or "cluster", got "sentinel"',
      ]);
    });

    it('checks TLS fields only when TLS is on', () => {
      const tlsFields = { ca: 'not pem', cert: '-----BEGIN CERTIFICATE-----\n...', servername: '10.0.0.1' };
      assert.deepEqual(validateEndpointConfig(standalone({ tls: { enabled: false, ...tlsFields } })), []);
      assert.deepEqual(validateEndpointConfig(standalone({ tls: { enabled: true, ...tlsFields } })), [
        'tls.ca: not PEM text (expected a "-----BEGIN ...-----" block)',
        'tls.key: a client certificate and its key go together',
        'tls.servername: must be a DNS name, not an IP address (10.0.0.1)',
      ]);
    });
  });

  describe('readEndpointSettings', () => {
    it('turns the editor fields and credentials into a config', () => {
      const { config, problems } = readEndpointSettings(
        {
          mode: 'standalone',
          host: ' redis.internal ',
          port: '6380',
          db: '',
          connectTimeout: '2500',
          tls: true,
          tlsCa: '',
          tlsCert: '-----BEGIN CERTIFICATE-----c',
          tlsServername: 'redis.example',
          tlsVerify: false,
        },
        { username: 'sync', password: 'pw', tlsKey: '-----BEGIN PRIVATE KEY-----k' },
      );
      assert.deepEqual(problems, []);
      assert.deepEqual(config, {
        mode: 'standalone',
        host: 'redis.internal',
        port: 6380,
        db: 0,
        username: 'sync',
        password: 'pw',
        connectTimeoutMs: 2500,
        tls: {
          enabled: true,
          ca: undefined,
          cert: '-----BEGIN CERTIFICATE-----c',
          key: '-----BEGIN PRIVATE KEY-----k',
          servername: 'redis.example',
          verify: false,
        },
      });
    });

    it('reports each unparsable field once, by name', () => {
      assert.deepEqual(readEndpointSettings({ mode: 'standalone', host: 'h', port: 'abc', db: 'x' }).problems, [
        'port: "abc" is not a number',
        'db: "x" is not a number',
      ]);
      assert.deepEqual(readEndpointSettings({ mode: 'standalone', host: 'h' }).problems, [
        'port: must be an integer from 1 to 65535, got NaN',
      ]);
      assert.deepEqual(readEndpointSettings({ mode: 'cluster', seeds: 'a:1, b' }).problems, ['seeds: seed 2 "b": expected host:port']);
      const cluster = readEndpointSettings({ mode: 'cluster', seeds: 'a:1\nb:2', db: '5', port: 'ignored' });
      assert.deepEqual(cluster.problems, []);
      assert.deepEqual(cluster.config.mode === 'cluster' && cluster.config.seeds, [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ]);
    });
  });

  describe('resolveAuth', () => {
    it('sends the password alone when there is no username', () => {
      assert.deepEqual(resolveAuth(undefined, 'pw'), { password: 'pw' });
      assert.deepEqual(resolveAuth('', 'pw'), { password: 'pw' });
      assert.equal(resolveAuth('', ''), undefined);
      assert.equal(resolveAuth(undefined, undefined), undefined);
    });

    it('splits user:password at the first colon only when the username is empty', () => {
      assert.deepEqual(resolveAuth('', 'sync:pa:ss'), { username: 'sync', password: 'pa:ss' });
      assert.deepEqual(resolveAuth('sync', 'pa:ss'), { username: 'sync', password: 'pa:ss' });
      // No user before the colon: nothing to split off.
      assert.deepEqual(resolveAuth('', ':pass'), { password: ':pass' });
    });

    it("sends the user 'default' as the one-argument AUTH, which forces a password with a colon whole", () => {
      assert.deepEqual(resolveAuth('default', 'pa:ss'), { password: 'pa:ss' });
      assert.deepEqual(resolveAuth('', 'default:pw'), { password: 'pw' });
    });

    it('keeps a username with an empty password (an ACL user with nopass)', () => {
      assert.deepEqual(resolveAuth('reader', ''), { username: 'reader', password: '' });
    });
  });

  describe('toIoRedisOptions and toSocketOptions', () => {
    const pem = { ca: '-----BEGIN CERTIFICATE-----ca', cert: '-----BEGIN CERTIFICATE-----c', key: '-----BEGIN PRIVATE KEY-----k' };

    it('gives ioredis the address, db, credentials and timeout of a standalone endpoint', () => {
      assert.deepEqual(toIoRedisOptions(standalone({ db: 2, password: 'sync:pw', connectTimeoutMs: 1234 })), {
        mode: 'standalone',
        options: { host: HOST, port: 6379, db: 2, username: 'sync', password: 'pw', connectTimeout: 1234 },
      });
    });

    it('puts auth and TLS of a cluster into redisOptions, for every node', () => {
      const target = toIoRedisOptions({
        mode: 'cluster',
        seeds: [{ host: 'a', port: 7000 }],
        password: 'pw',
        tls: { enabled: true, ...pem, servername: 'redis.example' },
      });
      assert.deepEqual(target, {
        mode: 'cluster',
        seeds: [{ host: 'a', port: 7000 }],
        options: {
          slotsRefreshTimeout: 10_000,
          redisOptions: {
            password: 'pw',
            connectTimeout: 10_000,
            tls: { ...pem, servername: 'redis.example', rejectUnauthorized: true },
          },
        },
      });
    });

    it('passes the TLS fields, the auth pair and the timeout through to a raw socket', () => {
      const cfg = standalone({
        username: 'sync',
        password: 'pw',
        connectTimeoutMs: 750,
        tls: { enabled: true, ...pem, servername: 'redis.example', verify: false },
      });
      assert.deepEqual(toSocketOptions(cfg, '10.1.2.3', 7001), {
        tls: true,
        connect: { host: '10.1.2.3', port: 7001, ...pem, servername: 'redis.example', rejectUnauthorized: false },
        auth: { username: 'sync', password: 'pw' },
        connectTimeoutMs: 750,
      });
      assert.deepEqual(toSocketOptions(standalone({ tls: { enabled: false, ...pem } }), 'h', 1), {
        tls: false,
        connect: { host: 'h', port: 1 },
        connectTimeoutMs: 10_000,
      });
    });

    it('refuses to create a client for an invalid config, naming the problems', () => {
      assert.throws(() => createClient(standalone({ port: 99999 })), /^Error: invalid Redis endpoint: port: must be an integer from 1 to 65535, got 99999$/);
    });
  });

  describe('against real servers', () => {
    const clients: Array<Redis | Cluster> = [];
    const connect = (cfg: EndpointConfig): Redis | Cluster => {
      const client = createClient(cfg);
      clients.push(client);
      return client;
    };
    afterEach(() => {
      for (const client of clients.splice(0)) client.disconnect();
    });

    describe('standalone with ACL users and a requirepass password', () => {
      let server: RedisServer;
      before(async () => {
        server = await startRedis({ config: { requirepass: 'legacy:pw' } });
        await server.command('ACL', 'SETUSER', 'sync', 'on', '>s3cret', '~*', '&*', '+@all');
      });
      after(() => server.stop());

      const whoami = async (cfg: Partial<EndpointConfig>): Promise<string> => {
        const client = connect(standalone({ port: server.port, ...cfg })) as Redis;
        assert.equal(await client.ping(), 'PONG');
        return String(await client.call('ACL', 'WHOAMI'));
      };

      it('logs in as an ACL user with username and password', async () => {
        assert.equal(await whoami({ username: 'sync', password: 's3cret' }), 'sync');
      });

      it('logs in as an ACL user given as user:password in the password field', async () => {
        assert.equal(await whoami({ password: 'sync:s3cret' }), 'sync');
      });

      it("sends a requirepass password containing a colon whole when the username is 'default'", async () => {
        assert.equal(await whoami({ username: 'default', password: 'legacy:pw' }), 'default');
        // The documented ambiguity: without it the password is taken for user:password.
        const client = connect(standalone({ port: server.port, password: 'legacy:pw', connectTimeoutMs: 2000 }));
        assert.match(await outcome(client), /WRONGPASS/);
      });

      it('logs in with AUTH through the pair toSocketOptions gives a raw socket', async () => {
        const opts = toSocketOptions(standalone({ password: 'sync:s3cret' }), HOST, server.port);
        assert.equal(await rawCommand(opts, 'ACL', 'WHOAMI'), 'sync');
        assert.equal(await rawCommand(opts, 'PING'), '+PONG');
      });

      it('selects the configured db', async () => {
        const client = connect(standalone({ port: server.port, username: 'sync', password: 's3cret', db: 5 })) as Redis;
        await client.set('in-db-5', '1');
        assert.equal(String(await server.command('EXISTS', 'in-db-5')), '0');
        assert.equal(await client.call('CLIENT', 'INFO').then((info) => /\bdb=5\b/.test(String(info))), true);
      });
    });

    describe('a requirepass-only server', () => {
      let server: RedisServer;
      before(async () => {
        server = await startRedis({ config: { requirepass: 'only-pw' } });
      });
      after(() => server.stop());

      it('logs in with the password alone', async () => {
        const client = connect(standalone({ port: server.port, password: 'only-pw' })) as Redis;
        assert.equal(await client.ping(), 'PONG');
        assert.equal(await client.call('ACL', 'WHOAMI'), 'default');
      });

      it('reports a wrong password as an error event', async () => {
        const client = connect(standalone({ port: server.port, password: 'wrong', connectTimeoutMs: 2000 }));
        assert.match(await outcome(client), /WRONGPASS/);
      });
    });

    describe('a cluster', () => {
      let cluster: RedisCluster;
      before(async () => {
        cluster = await startCluster({ masters: 3, replicas: 0, config: { requirepass: 'cluster-pw' } });
      });
      after(() => cluster.stop());

      it('connects from one seed, authenticates every node and reaches every slot', async () => {
        const client = connect({ mode: 'cluster', seeds: [cluster.seeds[1]], password: 'cluster-pw' }) as Cluster;
        assert.equal(await client.ping(), 'PONG');
        const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);
        await Promise.all(keys.map((k) => client.set(k, k)));
        assert.deepEqual(await Promise.all(keys.map((k) => client.get(k))), keys);
        assert.equal(client.nodes('master').length, 3);
      });
    });

    describe('TLS', () => {
      let dir: string;
      let server: RedisServer;
      let tlsPort: number;
      let pem: { ca: string; cert: string; key: string; otherCa: string };

      // A private CA, a server certificate for the DNS name redis.test only (so the name check
      // is exercised against 127.0.0.1), and a client certificate, all made with openssl.
      before(async () => {
        dir = mkdtempSync(path.join(tmpdir(), 'redis-sync-tls-'));
        const ssl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir });
        const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
        await ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=redis-sync test CA');
        await ssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=another CA');
        for (const [name, ext] of [
          ['server', 'subjectAltName=DNS:redis.test\nextendedKeyUsage=serverAuth\n'],
          ['client', 'extendedKeyUsage=clientAuth\n'],
        ]) {
          writeFileSync(path.join(dir, `${name}.ext`), ext);
          await ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
          await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
            '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
        }
        const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
        pem = { ca: read('ca.crt'), cert: read('client.crt'), key: read('client.key'), otherCa: read('other.crt') };
        tlsPort = await freePort();
        server = await startRedis({
          config: {
            'tls-port': String(tlsPort),
            'tls-cert-file': path.join(dir, 'server.crt'),
            'tls-key-file': path.join(dir, 'server.key'),
            'tls-ca-cert-file': path.join(dir, 'ca.crt'),
            'tls-auth-clients': 'yes',
          },
        });
      });
      after(async () => {
        await server?.stop();
        rmSync(dir, { recursive: true, force: true });
      });

      const tlsEndpoint = (tlsCfg: Partial<NonNullable<EndpointConfig['tls']>>): EndpointConfig =>
        standalone({
          port: tlsPort,
          connectTimeoutMs: 3000,
          tls: { enabled: true, ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'redis.test', ...tlsCfg },
        });

      it('connects with the CA, a client certificate and the server name, and PINGs', async () => {
        const client = connect(tlsEndpoint({})) as Redis;
        assert.equal(await client.ping(), 'PONG');
      });

      it('opens a raw TLS socket from toSocketOptions', async () => {
        assert.equal(await rawCommand(toSocketOptions(tlsEndpoint({}), HOST, tlsPort), 'PING'), '+PONG');
      });

      it('refuses a server certificate from another CA, or for another name, while verify is on', async () => {
        assert.match(await outcome(connect(tlsEndpoint({ ca: pem.otherCa }))), /certificate/i);
        assert.match(await outcome(connect(tlsEndpoint({ servername: undefined }))), /altnames/);
      });

      it('accepts any server certificate with verify off', async () => {
        const client = connect(tlsEndpoint({ ca: undefined, servername: undefined, verify: false })) as Redis;
        assert.equal(await client.ping(), 'PONG');
      });

      it('is refused without a client certificate when the server requires one', async () => {
        assert.notEqual(await outcome(connect(tlsEndpoint({ cert: undefined, key: undefined }))), 'ready');
      });
    });
  });

  describe('in Node-RED', () => {
    type EndpointNode = EndpointHandle & { id: string };
    let server: RedisServer;
    before(async () => {
      server = await startRedis({ config: { requirepass: 'nr-pw' } });
      await startNodeRed();
    });
    afterEach(unloadFlow);
    after(async () => {
      await stopNodeRed();
      await server.stop();
    });

    const endpointNode = (props: Record<string, unknown>): FlowNode => ({
      id: 'endpoint',
      type: 'redis-endpoint',
      name: 'source',
      mode: 'standalone',
      host: HOST,
      port: String(server.port),
      db: '0',
      connectTimeout: '5000',
      tls: false,
      tlsVerify: true,
      ...props,
    });
    const flow = (props: Record<string, unknown> = {}): FlowNode[] => [
      { id: 'tab', type: 'tab', label: 'flow' },
      endpointNode(props),
      { id: 'user1', type: 'helper', z: 'tab' },
      { id: 'user2', type: 'helper', z: 'tab' },
    ];

    it('loads with its credentials reaching the runtime config', async () => {
      await loadFlow([builtNode('redis-endpoint')], flow({ tls: true, tlsServername: 'redis.test' }), {
        endpoint: { username: 'sync', password: 'pw', tlsKey: '-----BEGIN PRIVATE KEY-----k' },
      });
      const endpoint = getNode<EndpointNode>('endpoint');
      assert.deepEqual(endpoint.config, {
        mode: 'standalone',
        host: HOST,
        port: server.port,
        db: 0,
        username: 'sync',
        password: 'pw',
        connectTimeoutMs: 5000,
        tls: { enabled: true, ca: undefined, cert: undefined, key: '-----BEGIN PRIVATE KEY-----k', servername: 'redis.test', verify: true },
      });
    });

    it('opens no connection of its own: the nodes that use it open theirs from its config', async () => {
      const idle = await connectionCount(server);
      await loadFlow([builtNode('redis-endpoint')], flow(), { endpoint: { password: 'nr-pw' } });
      assert.equal(getNode<EndpointNode>('endpoint').config.password, 'nr-pw');
      assert.equal(await connectionCount(server), idle);
    });

    it('connects to a cluster given as seeds text', async () => {
      const cluster = await startCluster({ masters: 3, replicas: 0 });
      try {
        const seeds = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',\n');
        await loadFlow([builtNode('redis-endpoint')], flow({ mode: 'cluster', seeds }), {});
        const endpoint = getNode<EndpointNode>('endpoint');
        const client = createClient(endpoint.config) as Cluster;
        try {
          assert.equal(await client.set('{a}k', 'v'), 'OK');
          assert.equal(client.nodes('master').length, 3);
        } finally {
          client.disconnect();
        }
      } finally {
        await cluster.stop();
      }
    });

  });

  describe('editor', () => {
    let def: EditorDefinition;
    const t = messages('redis-endpoint');
    before(() => {
      def = editorDefinition('redis-endpoint');
    });
    const check = (prop: string, value: unknown, node: Record<string, unknown> = {}): boolean | string => {
      const validate = def.defaults[prop]?.validate ?? def.credentials?.[prop]?.validate;
      assert.ok(validate, `${prop} has a validator`);
      return validate.call({ mode: 'standalone', tls: false, ...node }, value, {});
    };

    it('is a config node whose settings and credentials are those the runtime reads', () => {
      assert.equal(def.category, 'config');
      assert.deepEqual(Object.keys(def.defaults).sort(), [
        'connectTimeout', 'db', 'host', 'mode', 'name', 'port', 'seeds', 'tls', 'tlsCa', 'tlsCert', 'tlsServername', 'tlsVerify',
      ]);
      assert.deepEqual(
        Object.fromEntries(Object.entries(def.credentials ?? {}).map(([name, cred]) => [name, cred.type])),
        { username: 'text', password: 'password', tlsKey: 'text' },
      );
    });

    it('marks bad values before deploy, with the reason', () => {
      assert.equal(check('port', '6379'), true);
      assert.equal(check('port', '65536'), t('redis-endpoint.errors.port'));
      assert.equal(check('port', 'abc', { mode: 'cluster' }), true, 'a cluster has no port field');
      assert.equal(check('host', '::1'), true);
      assert.equal(check('host', 'redis:6379'), t('redis-endpoint.errors.host'));
      assert.equal(check('db', ''), true);
      assert.equal(check('db', '-1'), t('redis-endpoint.errors.db'));
      assert.equal(check('connectTimeout', '0'), t('redis-endpoint.errors.connectTimeout'));
      assert.equal(check('seeds', 'h1:7000,\n[::1]:7001', { mode: 'cluster' }), true);
      assert.equal(check('seeds', '', { mode: 'cluster' }), 'At least one seed is required, as host:port');
      assert.equal(check('seeds', 'h1:7000, h2', { mode: 'cluster' }), 'Seed 2 "h2": expected host:port (IPv6 in brackets: [::1]:7000)');
      assert.equal(check('seeds', 'h1:99999', { mode: 'cluster' }), 'Seed 1 "h1:99999": port must be an integer from 1 to 65535');
      assert.equal(check('seeds', ''), true, 'a standalone server has no seeds field');
      assert.equal(check('tlsCa', 'junk', { tls: true }), t('redis-endpoint.errors.pem'));
      assert.equal(check('tlsCa', 'junk'), true, 'TLS off');
      assert.equal(check('tlsKey', '-----BEGIN PRIVATE KEY-----', { tls: true }), true);
      assert.equal(check('tlsServername', '10.0.0.1', { tls: true }), t('redis-endpoint.errors.servername'));
      assert.equal(check('tlsServername', 'redis.example', { tls: true }), true);
    });

    it('labels the node by name, address or seed count', () => {
      const label = (node: Record<string, unknown>): string => {
        assert.equal(typeof def.label, 'function');
        return (def.label as (this: Record<string, unknown>) => string).call({ _: t, ...node });
      };
      assert.equal(label({ name: 'source', mode: 'standalone', host: 'h', port: 1 }), 'source');
      assert.equal(label({ mode: 'standalone', host: '10.0.0.1', port: '6380' }), '10.0.0.1:6380');
      assert.equal(label({ mode: 'standalone', host: '::1', port: 6379 }), '[::1]:6379');
      assert.equal(label({ mode: 'cluster', seeds: 'a:1' }), 'cluster (1 seed)');
      assert.equal(label({ mode: 'cluster', seeds: 'a:1, b:2\nc:3' }), 'cluster (3 seeds)');
    });

    it('has every message key of its template in the en-US catalog, and help in en-US', () => {
      const dir = path.resolve(__dirname, '..', 'dist', 'nodes', 'redis-endpoint');
      const html = readFileSync(path.join(dir, 'redis-endpoint.html'), 'utf8');
      const keys = [...html.matchAll(/data-i18n="(?:\[\w+\])?([\w.-]+)"/g)].map((m) => m[1]);
      assert.ok(keys.length > 25, `found only ${keys.length} keys`);
      for (const key of keys) t(key);
      const help = readFileSync(path.join(dir, 'locales', 'en-US', 'redis-endpoint.html'), 'utf8');
      assert.match(help, /<script type="text\/html" data-help-name="redis-endpoint">/);
    });
  });
});
