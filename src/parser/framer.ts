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

/** Work done so far, for tests and benchmarks: both grow linearly with the bytes pushed. */
export interface FramerWork {
  /** Bytes copied into the framer's own buffer (framed messages copied out are not counted). */
  bytesCopied: number;
  /** Bytes searched for the end of a header section. */
  bytesScanned: number;
}

const EMPTY = Buffer.alloc(0);
const CR = 13;
const LF = 10;
/** A buffer this small is kept for the next partial message rather than allocated again. */
const KEEP_CAPACITY = 4096;

/**
 * Frames SIP messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 §18.3).
 * Memory is bounded by `maxMessageSize`: a peer that never finishes a header
 * section or announces a huge body is cut off with a fatal error.
 *
 * Work is linear in the bytes pushed however the stream is chunked: a chunk is
 * framed in place when nothing is buffered, a partial message is kept in one
 * growable buffer (amortised doubling), the search for the end of the header
 * section resumes where it stopped, and Content-Length is read once per message.
 */
export class StreamFramer {
  private store: Buffer = EMPTY;
  /** The unframed bytes are store[start, end). */
  private start = 0;
  private end = 0;
  /** A message's first byte (anything but CR/LF) has been seen and the message is not complete. */
  private started = false;
  /** Bytes of the current message already searched for the end of its header section. */
  private scanned = 0;
  /** Size of the current message once its header section has been read, else -1. */
  private total = -1;
  /** Length of the header/body separator found by findHeaderEnd. */
  private separator = 4;
  /** Next byte to frame in the buffer being drained (the store, or a chunk framed in place). */
  private cursor = 0;
  private dead = false;
  private readonly limits: ParseLimits;
  /** What every framed message is parsed with: one object, not one per message. */
  private readonly parseOptions: { stream: true; limits: ParseLimits };
  private readonly counters: FramerWork = { bytesCopied: 0, bytesScanned: 0 };

  constructor(
    private readonly handlers: StreamFramerHandlers,
    limits?: Partial<ParseLimits>,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.parseOptions = { stream: true, limits: this.limits };
  }

  /** Bytes buffered and not yet framed. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Part of a message (not just CRLF keep-alives) is buffered: a transport bounds
   * how long a message may take from its first byte (slow senders).
   */
  get messageInProgress(): boolean {
    return this.started;
  }

  get closed(): boolean {
    return this.dead;
  }

  /** Copying and scanning done so far (a snapshot). */
  get work(): FramerWork {
    return { ...this.counters };
  }

  push(chunk: Uint8Array): void {
    if (this.dead) return;
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (c.length === 0) return;
    if (this.start < this.end) {
      this.append(c);
      this.cursor = this.start;
      try {
        this.drain(this.store, this.end);
      } finally {
        this.start = this.dead ? 0 : this.cursor;
        if (this.start === this.end) this.reset();
      }
      return;
    }
    // Nothing buffered: frame straight out of the chunk and keep only its unfinished tail.
    this.cursor = 0;
    try {
      this.drain(c, c.length);
    } finally {
      if (!this.dead && this.cursor < c.length) this.append(c.subarray(this.cursor));
    }
  }

  private reset(): void {
    this.start = this.end = 0;
    if (this.store.length > KEEP_CAPACITY) this.store = EMPTY;
  }

  private append(c: Buffer): void {
    const live = this.end - this.start;
    if (this.end + c.length > this.store.length) {
      const need = live + c.length;
      if (need * 2 <= this.store.length) {
        // Room enough once the framed bytes in front are dropped: at most half the store moves.
        this.store.copyWithin(0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(need * 2, 512));
        this.store.copy(grown, 0, this.start, this.end);
        this.store = grown;
      }
      this.counters.bytesCopied += live;
      this.start = 0;
      this.end = live;
    }
    c.copy(this.store, this.end);
    this.end += c.length;
    this.counters.bytesCopied += c.length;
  }

  private fail(err: SipParseError): void {
    this.dead = true;
    this.store = EMPTY;
    this.start = this.end = 0;
    this.started = false;
    this.handlers.onError(err, true);
  }

  /**
   * Frame what `buf[this.cursor, to)` holds, advancing `cursor` past what was used
   * (before each message is handed on, so a throwing handler loses nothing).
   */
  private drain(buf: Buffer, to: number): void {
    const max = this.limits.maxMessageSize;
    for (;;) {
      let pos = this.cursor;
      if (!this.started) {
        pos = this.cursor = this.skipKeepAlives(buf, pos, to);
        if (this.dead || pos === to || buf[pos] === CR || buf[pos] === LF) return;
        this.started = true;
      }
      if (this.total < 0) {
        const headEnd = this.findHeaderEnd(buf, pos, to);
        if (headEnd < 0) {
          if (to - pos > max) this.fail(new SipParseError('TOO_LARGE', `header section exceeds ${max} bytes`));
          return;
        }
        // Checked before Content-Length, so that the error does not depend on how the stream was chunked.
        if (headEnd + this.separator > max) {
          this.fail(new SipParseError('TOO_LARGE', `header section exceeds ${max} bytes`));
          return;
        }
        const cl = contentLengthOf(buf.toString('latin1', pos, pos + headEnd));
        if (typeof cl !== 'number') {
          this.fail(cl);
          return;
        }
        const total = headEnd + this.separator + cl;
        if (total > max) {
          this.fail(new SipParseError('TOO_LARGE', `message of ${total} bytes exceeds ${max}`));
          return;
        }
        this.total = total;
      }
      if (to - pos < this.total) return;
      // Copy the message out so the (possibly large) stream buffer is not kept alive by its body.
      const bytes = Buffer.from(buf.subarray(pos, pos + this.total));
      this.cursor = pos + this.total;
      this.started = false;
      this.scanned = 0;
      this.total = -1;
      this.deliver(bytes);
      if (this.dead) return;
    }
  }

  private deliver(bytes: Buffer): void {
    if (this.handlers.onFrame) {
      this.handlers.onFrame(bytes);
      return;
    }
    try {
      this.handlers.onMessage?.(parseMessage(bytes, this.parseOptions));
    } catch (err) {
      if (err instanceof SipParseError) this.handlers.onError(err, false);
      else throw err;
    }
  }

  /**
   * Skip CRLFs between messages (RFC 3261 §7.5); a CRLF CRLF there is an RFC 5626
   * §3.5.1 ping. Stops at a message's first byte, or before a trailing CR/LF run
   * that may still become a ping, so a ping split across chunks is still a ping.
   */
  private skipKeepAlives(buf: Buffer, pos: number, to: number): number {
    while (pos < to) {
      const b = buf[pos];
      if (b === CR) {
        if (to - pos >= 4) {
          if (buf[pos + 1] === LF && buf[pos + 2] === CR && buf[pos + 3] === LF) {
            pos += 4;
            this.handlers.onPing?.();
            if (this.dead) return to;
            continue;
          }
        } else if (isPingPrefix(buf, pos, to)) {
          return pos;
        }
        pos++;
      } else if (b === LF) {
        pos++;
      } else {
        return pos;
      }
    }
    return pos;
  }

  /**
   * Offset (from `pos`, the message's first byte) where its header section ends,
   * setting `separator` to 4 (CRLF CRLF) or 2 (a bare LF LF); -1 if not there yet.
   * The search resumes where the last one stopped. The earliest separator to end
   * is also the earliest to start, since the two patterns cannot overlap.
   */
  private findHeaderEnd(buf: Buffer, pos: number, to: number): number {
    const from = pos + Math.max(this.scanned, 1);
    // A view ending at `to`: the store's spare capacity past it holds stale bytes.
    const view = to === buf.length ? buf : buf.subarray(0, to);
    let i = from;
    for (;;) {
      const nl = i < to ? view.indexOf(LF, i) : -1;
      if (nl < 0) {
        this.counters.bytesScanned += to - from;
        this.scanned = to - pos;
        return -1;
      }
      let headEnd = -1;
      if (buf[nl - 1] === LF) {
        headEnd = nl - 1 - pos;
        this.separator = 2;
      } else if (nl - 3 >= pos && buf[nl - 1] === CR && buf[nl - 2] === LF && buf[nl - 3] === CR) {
        headEnd = nl - 3 - pos;
        this.separator = 4;
      }
      if (headEnd >= 0) {
        this.counters.bytesScanned += nl + 1 - from;
        this.scanned = nl + 1 - pos;
        return headEnd;
      }
      i = nl + 1;
    }
  }
}

/** buf[pos, to) is a proper prefix of CR LF CR LF. */
function isPingPrefix(buf: Buffer, pos: number, to: number): boolean {
  for (let k = 0; pos + k < to; k++) if (buf[pos + k] !== (k % 2 === 0 ? CR : LF)) return false;
  return true;
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
