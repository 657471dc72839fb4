import { createServer } from 'node:net';

// Ports of the packaged services: a real instance may be running on this host,
// so a test must never grab (or appear to be) one of them.
const RESERVED = new Set([22, 3306, 8086, 8088]);

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

// Handed-out ports are remembered so that two servers started in the same
// process never get the same port before either has bound it.
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await bindEphemeral();
    if (port > 0 && !RESERVED.has(port) && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no usable port found after 50 attempts');
}
