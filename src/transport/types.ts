import { SipError } from '../parser/index.js';
// The codes of every layer are listed with SipError, whose `code` is their union.
import type { TransportErrorCode } from '../parser/errors.js';

export type { TransportErrorCode };

/** Where a message came from or goes to. `address` is a bare IP (no brackets for IPv6). */
export interface TransportAddress {
  address: string;
  port: number;
}

/** A transport failure, typed so the transaction layer can turn it into 503 (RFC 3261 §8.1.3.1). */
export class TransportError extends SipError {
  declare readonly code: TransportErrorCode;
  readonly remote: TransportAddress | undefined;
  constructor(code: TransportErrorCode, message: string, remote?: TransportAddress, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'TransportError';
    this.remote = remote;
  }

  static {
    this.brand(Symbol.for('sipkit.error.TransportError'));
  }
}

export interface TransportReceiver {
  /** One whole SIP message (a datagram, or one framed out of a stream). */
  onMessage(bytes: Uint8Array, from: TransportAddress, transport: Transport): void;
  /** A failure not tied to a send() call (socket error, a stream that cannot be framed). */
  onError?(error: TransportError, transport: Transport): void;
}

/**
 * What the stack needs of a transport, small enough to write your own (TLS,
 * WebSocket, a test double): send bytes to an address, hand received messages
 * to a receiver, say whether delivery is reliable, and where it listens.
 */
export interface Transport {
  /** `udp`, `tcp`, `tls`, `ws`, … (lower case; the Via shows it upper case). */
  readonly protocol: string;
  /** Reliable transports change the timers (RFC 3261 §17: no retransmissions, zero wait states). */
  readonly reliable: boolean;
  /** Address and port this transport is bound to (what goes in Via sent-by). */
  readonly local: TransportAddress;
  /** Install the receiver. Called once by the transaction layer before any traffic. */
  setReceiver(receiver: TransportReceiver): void;
  /** Send one message; rejects with a TransportError when it cannot be handed to the network. */
  send(bytes: Uint8Array, to: TransportAddress): Promise<void>;
  /**
   * Optional: send without a promise, reporting a failure (always asynchronously) to
   * `onError`. The transaction layer uses it when present: on a busy UDP trunk a promise
   * per datagram is a measurable share of the cost of sending it.
   */
  post?(bytes: Uint8Array, to: TransportAddress, onError: (error: TransportError) => void): void;
  close(): Promise<void>;
}

/** `[v6]` for IPv6 addresses, as Via and URIs write them. */
export function formatHost(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/** Strip the brackets of an IPv6 reference. */
export function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function addressKey(a: TransportAddress): string {
  return formatHost(a.address) + ':' + a.port;
}
