/**
 * An endpoint written as a URL, for the command line: `redis://[user[:password]@]host:port`,
 * `rediss://` for TLS, and `cluster://` (`clusters://` for TLS) with one or more seeds,
 * `cluster://user:password@10.0.0.1:7000,10.0.0.2:7000`. User and password are
 * percent-decoded; where the URL has none, `fallback` gives them (e.g. from the environment).
 */
import { parseSeeds, validateEndpointConfig, type EndpointConfig } from './config';

const URL_FORM = /^(redis|rediss|cluster|clusters):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/?$/;

export function endpointFromUrl(url: string, fallback: { username?: string; password?: string } = {}): EndpointConfig {
  const m = URL_FORM.exec(url.trim());
  if (m === null) throw new Error(`"${redact(url)}" is not redis://[user[:password]@]host:port, rediss://…, or cluster://[user[:password]@]host:port[,host:port…]`);
  const [, scheme, user, password, hosts] = m;
  const seeds = parseSeeds(hosts);
  const common = {
    username: user ? decodeURIComponent(user) : fallback.username,
    password: password !== undefined ? decodeURIComponent(password) : fallback.password,
    ...(scheme === 'rediss' || scheme === 'clusters' ? { tls: { enabled: true } } : {}),
  };
  let cfg: EndpointConfig;
  if (scheme.startsWith('cluster')) cfg = { mode: 'cluster', seeds, ...common };
  else if (seeds.length !== 1) throw new Error(`${scheme}:// takes one host:port; several are cluster seeds: write cluster://${hosts}`);
  else cfg = { mode: 'standalone', host: seeds[0].host, port: seeds[0].port, ...common };
  const problems = validateEndpointConfig(cfg);
  if (problems.length > 0) throw new Error(`${redact(url)}: ${problems.join('; ')}`);
  return cfg;
}

/** The URL with its password replaced by "***", for messages. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}
