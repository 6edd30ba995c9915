/**
 * Free TCP ports on 127.0.0.1, found by binding port 0.
 */
import { createServer, type Server } from 'node:net';

/**
 * Returns `count` distinct free ports. All are held open until every one is known, so the kernel
 * cannot hand out the same port twice; another process may still take one before our binary
 * binds it, which a local cluster start turns into a retry-worthy error with the process log.
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
            const address = server.address();
            if (address && typeof address === 'object') resolve(address.port);
            else reject(new Error('listening socket has no port'));
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** One free port per name, e.g. `await freeLoopbackPortsNamed(['etcd', 'apiServer'])`. */
export async function freeLoopbackPortsNamed<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const ports = await freeLoopbackPorts(names.length);
  return Object.fromEntries(names.map((name, i) => [name, ports[i]])) as Record<K, number>;
}
