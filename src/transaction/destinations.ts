import type { Transport, TransportAddress } from '../transport/index.js';
import { LruMap } from '../util/lru.js';
import { ownText } from '../util/own.js';
import type { Destination } from './base.js';

/**
 * Destinations (and message sources: the same pair) interned per layer: one frozen object per
 * transport, address and port, shared by every transaction, dialog and call that sends there or
 * heard from there. A transaction waiting out Timer J, K, L or M, or a dialog, keeps a reference,
 * not an object pair and an address string of its own (issue #16: ~100 bytes each, four
 * transactions per ended call). Peers choose their source ports, so each transport's table is an
 * LruMap: a flood of new ports evicts the least recently heard peers (what was handed out stays
 * valid, only no longer shared), never the busy trunk peer. A TLS address with a server name is
 * not interned: its own object, the server name kept.
 */
export class Destinations {
  private readonly byTransport = new Map<Transport, LruMap<string, Destination>>();

  constructor(private readonly maxPerTransport = 2048) {}

  /** The destination for `address` over `transport` (frozen: replace it, never change it). */
  of(transport: Transport, address: TransportAddress): Destination {
    const serverName = (address as { serverName?: string }).serverName;
    if (serverName !== undefined) return { transport, address: { address: address.address, port: address.port, serverName } as TransportAddress };
    let peers = this.byTransport.get(transport);
    if (peers === undefined) this.byTransport.set(transport, (peers = new LruMap(this.maxPerTransport)));
    const key = address.address + ' ' + address.port;
    let d = peers.get(key);
    if (d === undefined) {
      // A copy of the address string: it may be cut out of a received message (a Via's received=),
      // which it would otherwise keep whole.
      d = Object.freeze({ transport, address: Object.freeze({ address: ownText(address.address), port: address.port }) });
      peers.set(key, d);
    }
    return d;
  }

  /** Peers interned now (for tests). */
  get size(): number {
    let n = 0;
    for (const peers of this.byTransport.values()) n += peers.size;
    return n;
  }
}
