// Public face of sipkit/transport: pluggable transports, the injectable clock, and a test network.
export { RealClock, FakeClock, type Clock, type Timer } from './clock.js';
export {
  TransportError,
  formatHost,
  bareHost,
  addressKey,
  type Transport,
  type TransportAddress,
  type TransportReceiver,
  type TransportErrorCode,
} from './types.js';
export { UdpTransport, type UdpTransportOptions } from './udp.js';
export { TcpTransport, type TcpTransportOptions } from './tcp.js';
export { TestNetwork, TestTransport, seededRandom, type NetworkConditions, type Packet, type PacketFate, type TestNetworkOptions } from './test-network.js';
