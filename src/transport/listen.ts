import { createServer, type Server } from 'node:net';
import { TransportError, type TransportAddress } from './types.js';

/**
 * A listening TCP socket for a stream transport (TCP, or TLS accepted as plain TCP first so the
 * connection pool's limits apply before any handshake). `label` names the transport in errors.
 */
export function listenStream(host: string, port: number, label: string): Promise<{ server: Server; local: TransportAddress }> {
  const server = createServer({ noDelay: true });
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new TransportError('SOCKET', `cannot listen on ${label} ${host}:${port}: ${err.message}`, undefined, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address();
      if (a === null || typeof a === 'string') return reject(new TransportError('SOCKET', `no ${label} address`));
      resolve({ server, local: { address: a.address, port: a.port } });
    });
  });
}
