import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (listen(0), then closed), for a server a
 * test starts. Redis servers come from the harness, which hands out its own ports.
 */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
