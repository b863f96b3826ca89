// Public face of sipkit/testing: the test doubles, for tests of code built on sipkit.
// A virtual clock that runs RFC 3261 timers deterministically, and an in-memory network with
// seeded loss, duplication and reordering (also exported from sipkit/transport).
export {
  FakeClock,
  type Clock,
  type Timer,
  TestNetwork,
  TestTransport,
  seededRandom,
  type NetworkConditions,
  type Packet,
  type PacketFate,
  type TestNetworkOptions,
} from '../transport/index.js';
