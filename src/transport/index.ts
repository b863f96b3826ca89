// Public face of sipkit/transport: pluggable transports (UDP, TCP, TLS), the injectable clock, and a test network.
export { RealClock, FakeClock, type Clock, type Timer, type RealClockOptions } from './clock.js';
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
export { UdpTransport, type UdpTransportOptions, type UdpInboxLimit, type UdpInboxStats, type UdpSendThreadStats } from './udp.js';
export { TcpTransport, type TcpTransportOptions } from './tcp.js';
export type { StreamTransportOptions } from './connection-pool.js';
export { TlsTransport, type TlsTransportOptions, type TlsTarget, type TlsPeerIdentity } from './tls.js';
export { sipDomainIdentities, certificateMatchesDomain, type CertificateNames } from './tls-identity.js';
export { TestNetwork, TestTransport, seededRandom, type NetworkConditions, type Packet, type PacketFate, type TestNetworkOptions } from './test-network.js';
