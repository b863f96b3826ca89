/**
 * The benchmark's floor, run as its own process: `udp-relay.ts <listen port> <destination port> [buffer bytes]`
 * forwards every datagram from a caller to the destination and every datagram from the
 * destination to the last caller seen, on 127.0.0.1, and does nothing else (no SIP).
 */
import { createSocket } from 'node:dgram';

const [listenPort, destinationPort, buffer] = process.argv.slice(2).map(Number);
if (!listenPort || !destinationPort) {
  console.error('usage: udp-relay.ts <listen port> <destination port>');
  process.exit(2);
}
const s = createSocket('udp4');
let caller: { address: string; port: number } | undefined;
s.on('message', (msg, from) => {
  if (from.port === destinationPort) {
    if (caller) s.send(msg, caller.port, caller.address);
  } else {
    caller = { address: from.address, port: from.port };
    s.send(msg, destinationPort, '127.0.0.1');
  }
});
s.bind(listenPort, '127.0.0.1', () => {
  if (buffer) {
    s.setRecvBufferSize(buffer);
    s.setSendBufferSize(buffer);
  }
});
process.on('SIGTERM', () => s.close(() => process.exit(0)));
