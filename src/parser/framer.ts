import { SipParseError } from './errors.js';
import { headerKey } from './header-names.js';
import type { SipRequest, SipResponse } from './message.js';
import { DEFAULT_LIMITS, parseMessage, type ParseLimits } from './parse.js';

export interface StreamFramerHandlers {
  /** A parsed message. */
  onMessage?(message: SipRequest | SipResponse): void;
  /** The raw bytes of one framed message, when the consumer parses for itself (transports). */
  onFrame?(bytes: Buffer): void;
  /**
   * A message could not be used. `fatal` means the stream itself can no longer be
   * framed (bad or missing Content-Length, oversize): close the connection (RFC 4475 §3.1.2.3).
   */
  onError(error: SipParseError, fatal: boolean): void;
  /** RFC 5626 §3.5.1 keep-alive ping (CRLF CRLF): answer with a single CRLF pong. */
  onPing?(): void;
}

/**
 * Frames SIP messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 §18.3).
 * Memory is bounded by `maxMessageSize`: a peer that never finishes a header
 * section or announces a huge body is cut off with a fatal error.
 */
export class StreamFramer {
  private pending: Buffer = Buffer.alloc(0);
  private dead = false;
  private readonly limits: ParseLimits;

  constructor(
    private readonly handlers: StreamFramerHandlers,
    limits?: Partial<ParseLimits>,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Bytes buffered and not yet framed. */
  get buffered(): number {
    return this.pending.length;
  }

  get closed(): boolean {
    return this.dead;
  }

  push(chunk: Uint8Array): void {
    if (this.dead) return;
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.pending = this.pending.length === 0 ? c : Buffer.concat([this.pending, c]);
    this.drain();
  }

  private fail(err: SipParseError): void {
    this.dead = true;
    this.pending = Buffer.alloc(0);
    this.handlers.onError(err, true);
  }

  private drain(): void {
    const max = this.limits.maxMessageSize;
    for (;;) {
      let buf = this.pending;
      // Skip CRLFs between messages; a CRLF CRLF there is a keep-alive ping.
      let i = 0;
      while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) {
        if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
          i += 4;
          this.handlers.onPing?.();
        } else if (buf[i] === 13 && i + 1 >= buf.length) {
          break; // a CR whose LF has not arrived yet
        } else {
          i++;
        }
      }
      if (i > 0) {
        buf = buf.subarray(i);
        this.pending = buf;
      }
      if (buf.length === 0 || (buf.length === 1 && buf[0] === 13)) return;
      const crlf = buf.indexOf('\r\n\r\n', 0, 'latin1');
      const lf = buf.indexOf('\n\n', 0, 'latin1');
      let headEnd: number;
      let sep: number;
      if (crlf >= 0 && (lf < 0 || crlf < lf)) {
        headEnd = crlf;
        sep = 4;
      } else if (lf >= 0) {
        headEnd = lf;
        sep = 2;
      } else {
        if (buf.length > max) this.fail(new SipParseError('TOO_LARGE', `header section exceeds ${max} bytes`));
        return;
      }
      const cl = contentLengthOf(buf.toString('latin1', 0, headEnd));
      if (typeof cl !== 'number') {
        this.fail(cl);
        return;
      }
      const total = headEnd + sep + cl;
      if (total > max) {
        this.fail(new SipParseError('TOO_LARGE', `message of ${total} bytes exceeds ${max}`));
        return;
      }
      if (buf.length < total) return;
      // Copy the message out so the (possibly large) stream buffer is not kept alive by its body.
      const bytes = Buffer.from(buf.subarray(0, total));
      this.pending = buf.subarray(total);
      if (this.handlers.onFrame) {
        this.handlers.onFrame(bytes);
        if (this.dead) return;
        continue;
      }
      try {
        this.handlers.onMessage?.(parseMessage(bytes, { stream: true, limits: this.limits }));
      } catch (err) {
        if (err instanceof SipParseError) this.handlers.onError(err, false);
        else throw err;
      }
      if (this.dead) return;
    }
  }
}

/** Content-Length of a header section, or the framing error that prevents knowing it. */
function contentLengthOf(head: string): number | SipParseError {
  let found: number | undefined;
  let pos = head.indexOf('\n') + 1;
  while (pos > 0 && pos < head.length) {
    let eol = head.indexOf('\n', pos);
    if (eol < 0) eol = head.length;
    const colon = head.indexOf(':', pos);
    if (colon > pos && colon < eol) {
      const name = head.slice(pos, colon).trim();
      if (name.length <= 14 && headerKey(name) === 'content-length') {
        const v = head.slice(colon + 1, eol).trim();
        if (!/^[0-9]{1,10}$/.test(v)) return new SipParseError('BAD_CONTENT_LENGTH', `bad Content-Length: ${v.slice(0, 20)}`, 'content-length');
        const n = Number(v);
        if (found !== undefined && found !== n) return new SipParseError('BAD_CONTENT_LENGTH', 'conflicting Content-Length headers', 'content-length');
        found = n;
      }
    }
    pos = eol + 1;
  }
  if (found === undefined) return new SipParseError('MISSING_CONTENT_LENGTH', 'Content-Length is mandatory on stream transports', 'content-length');
  return found;
}
