import type { Transport, TransportAddress } from '../transport/index.js';
import { ownText } from '../util/own.js';
import type { Destination } from './base.js';

/**
 * Destinations (and message sources: the same pair) interned per layer: one frozen object per
 * transport, address and port, shared by every transaction, dialog and call that sends there or
 * heard from there. A transaction waiting out Timer J, K, L or M, or a dialog, keeps a reference,
 * not an object pair and an address string of its own (issue #16: ~100 bytes each, four
 * transactions per ended call). Bounded: past `max` peers the table starts again (what was handed
 * out stays valid, only no longer shared with what comes next), so a flood of source ports
 * cannot grow it. A TLS address with a server name is not interned (its own object, as before).
 */
export class Destinations {
  private readonly byTransport = new Map<Transport, Map<string, Map<number, Destination>>>();
  private count = 0;

  constructor(private readonly max = 2048) {}

  /** The interned destination for `address` over `transport` (frozen: replace it, never change it). */
  of(transport: Transport, address: TransportAddress): Destination {
    if ((address as { serverName?: string }).serverName !== undefined) return { transport, address };
    let hosts = this.byTransport.get(transport);
    if (hosts === undefined) this.byTransport.set(transport, (hosts = new Map()));
    const ports = hosts.get(address.address);
    let d = ports?.get(address.port);
    if (d !== undefined) return d;
    if (this.count >= this.max) return this.restart(transport, address);
    // One copy of the address string per host, shared by its ports: it may be cut out of a
    // received message (a Via's received=), which it would otherwise keep whole.
    const host = ports === undefined ? ownText(address.address) : ports.values().next().value!.address.address;
    d = Object.freeze({ transport, address: Object.freeze({ address: host, port: address.port }) });
    if (ports === undefined) hosts.set(host, new Map([[address.port, d]]));
    else ports.set(address.port, d);
    this.count++;
    return d;
  }

  /** Peers interned now (for tests). */
  get size(): number {
    return this.count;
  }

  private restart(transport: Transport, address: TransportAddress): Destination {
    this.byTransport.clear();
    this.count = 0;
    return this.of(transport, address);
  }
}
