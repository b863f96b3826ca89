import type { Transport, TransportAddress } from '../transport/index.js';
import { ownText } from '../util/own.js';
import type { Destination } from './base.js';

/** One interned peer: in its transport's table under address then port, and in the recency list. */
interface Peer {
  readonly dest: Destination;
  readonly byPort: Map<number, Peer>;
  /** Towards the most recently heard. */
  newer: Peer | undefined;
  /** Towards the least recently heard. */
  older: Peer | undefined;
}

/** One transport's peers: by address, then port; most recently heard first in a list through them. */
interface PeerTable {
  readonly byAddress: Map<string, Map<number, Peer>>;
  newest: Peer | undefined;
  oldest: Peer | undefined;
  size: number;
}

/**
 * Destinations (and message sources: the same pair) interned per layer: one frozen object per
 * transport, address and port, shared by every transaction, dialog and call that sends there or
 * heard from there. A transaction waiting out Timer J, K, L or M, or a dialog, keeps a reference,
 * not an object pair and an address string of its own (issue #16: ~100 bytes each, four
 * transactions per ended call). Peers choose their source ports, so each transport's table is
 * bounded: a flood of new ports evicts the least recently heard peers (what was handed out stays
 * valid, only no longer shared), never the busy trunk peer. A TLS address with a server name is
 * not interned: its own object, the server name kept.
 *
 * Looked up for every message received: by address, then by port (no key string made, hashed and
 * dropped per message), and a hit only moves the peer to the front of its table's recency list
 * (no delete and re-insert of a map entry).
 */
export class Destinations {
  private readonly byTransport = new Map<Transport, PeerTable>();

  /** Peers kept per transport (at least one). */
  private readonly maxPerTransport: number;

  constructor(maxPerTransport = 2048) {
    this.maxPerTransport = Math.max(1, maxPerTransport);
  }

  /** The destination for `address` over `transport` (frozen: replace it, never change it). */
  of(transport: Transport, address: TransportAddress): Destination {
    const serverName = (address as { serverName?: string }).serverName;
    if (serverName !== undefined) return { transport, address: { address: address.address, port: address.port, serverName } as TransportAddress };
    let table = this.byTransport.get(transport);
    if (table === undefined) this.byTransport.set(transport, (table = { byAddress: new Map(), newest: undefined, oldest: undefined, size: 0 }));
    let byPort = table.byAddress.get(address.address);
    const peer = byPort?.get(address.port);
    if (peer !== undefined) {
      if (peer !== table.newest) {
        // Unlink (it has a newer one: it is not the newest) and put it first.
        const older = peer.older;
        peer.newer!.older = older;
        if (older === undefined) table.oldest = peer.newer;
        else older.newer = peer.newer;
        peer.newer = undefined;
        peer.older = table.newest;
        table.newest!.newer = peer;
        table.newest = peer;
      }
      return peer.dest;
    }
    if (table.size >= this.maxPerTransport) this.evictOldest(table);
    // A copy of the address string: it may be cut out of a received message (a Via's received=),
    // which it would otherwise keep whole.
    const own = ownText(address.address);
    // (Empty when the eviction above took this address's last port: its map left the table.)
    if (byPort === undefined || byPort.size === 0) table.byAddress.set(own, (byPort = new Map()));
    const dest: Destination = Object.freeze({ transport, address: Object.freeze({ address: own, port: address.port }) });
    const added: Peer = { dest, byPort, newer: undefined, older: table.newest };
    if (table.newest === undefined) table.oldest = added;
    else table.newest.newer = added;
    table.newest = added;
    byPort.set(address.port, added);
    table.size++;
    return dest;
  }

  private evictOldest(table: PeerTable): void {
    const gone = table.oldest!;
    table.oldest = gone.newer;
    if (gone.newer === undefined) table.newest = undefined;
    else gone.newer.older = undefined;
    gone.newer = undefined;
    table.size--;
    gone.byPort.delete(gone.dest.address.port);
    if (gone.byPort.size === 0) table.byAddress.delete(gone.dest.address.address);
  }

  /** Peers interned now (for tests). */
  get size(): number {
    let n = 0;
    for (const table of this.byTransport.values()) n += table.size;
    return n;
  }
}
