/**
 * Copies for data kept as long as a call lasts. V8 cuts a substring of 13 characters or more
 * out of a string as a view of it (a sliced string), and Node cuts small Buffers out of a
 * shared 8 KB slab; `subarray` views a whole received datagram. Kept for hours, a 20-character
 * Call-ID then holds the whole INVITE's text, and a 150-byte SDP a whole slab or datagram.
 * These make a copy of just what is kept, once, when it starts to be kept.
 */

/** A string that holds only its own characters (not a view of a larger one, nor a concatenation of pieces of others). */
export function ownText(s: string): string {
  // Shorter ones are always copied by V8 when cut out. A longer one is joined again from its
  // first character and the rest: a concatenation (V8 makes a cons string of 13 characters or
  // more), which reading a character flattens into one new sequential string, letting go of the
  // text the rest was sliced from (as flatText). One copy of the characters, exact for any
  // UTF-16 (a lone surrogate too); a round trip through a UTF-8 Buffer cost ~5x more.
  if (s.length < 13) return s;
  const copy = s[0]! + s.slice(1);
  copy.charCodeAt(0);
  return copy;
}

/**
 * A concatenation (a key built of parts cut from a message) as one flat string of its own:
 * reading a character makes V8 copy the chain of parts into one sequential string, letting go
 * of the texts the parts were sliced from, in one copy (ownText on a concatenation would flatten
 * it and then copy it again). Only for a string built with `+`: a plain slice stays a slice.
 */
export function flatText(concatenation: string): string {
  concatenation.charCodeAt(0);
  return concatenation;
}

/**
 * Bytes in an ArrayBuffer of their own, of their exact size: `b` itself when it already is one.
 * Also what a transaction keeps to resend while it waits out Timer G, J or D: one 8 KiB pool
 * slice kept for 64·T1 would keep its whole slab alive.
 */
export function ownBytes(b: Uint8Array): Uint8Array {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b;
  const copy = Buffer.allocUnsafeSlow(b.byteLength);
  copy.set(b);
  return copy;
}

/**
 * Bytes kept to resend while a transaction waits out Timer G, J or D (or a dialog its ACK),
 * as a one-byte string, one character a byte: a string is one heap object of 16 bytes plus its
 * text, where a Buffer of its own is a typed array, an ArrayBuffer and an off-heap backing
 * store, ~300 bytes beyond the text — per ended call, per transaction that waits (issue #16).
 * `resendable` gives bytes back to send; a resend is rare, the copy then is cheap.
 */
export function keepBytes(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Bytes to send again: what `keepBytes` kept, or bytes kept as they were (over a connection, nothing outlives its write). */
export function resendable(kept: string | Uint8Array): Uint8Array {
  return typeof kept === 'string' ? Buffer.from(kept, 'latin1') : kept;
}
