import type { CallRecord } from 'sipkit/b2bua';
import { ApiError, type HttpRoute } from './http-api.js';
import type { TraceHook } from './metrics.js';

/** One SIP message of a call, as `GET /v1.0/calls/{id}/messages` lists it. */
export interface CapturedMessage {
  /** ISO time it was sent or received. */
  at: string;
  direction: 'in' | 'out';
  /** The leg: the caller's (A) or the destination's (B). */
  peer: 'caller' | 'destination';
  /** The far end, transport:address:port. */
  remote: string;
  first_line: string;
  /** Size on the wire. */
  bytes: number;
  /** The whole message. */
  text: string;
}

export interface CaptureOptions {
  /** Messages kept per call; later ones are counted in `dropped` (default 200). */
  maxMessagesPerCall?: number;
  /** Calls kept; beyond, the oldest capture is forgotten (default 1000). */
  maxCalls?: number;
  /** Bytes of message text kept over all calls; beyond, the oldest captures are forgotten (default 32 MiB). */
  maxBytes?: number;
  /**
   * Messages whose Call-ID no call has yet (the 407 exchange before the call's record exists,
   * a B leg's INVITE before its record update) wait this long to be claimed (default 32 s).
   */
  pendingMs?: number;
  /** Call-IDs waiting to be claimed at most (default 256): unauthenticated traffic cannot grow it. */
  maxPending?: number;
  now?: () => number;
}

/** The B2BUA events capture follows (a `B2bua` has them). */
export interface CaptureEvents {
  on(event: 'call' | 'update', fn: (record: CallRecord) => void): unknown;
  off(event: 'call' | 'update', fn: (record: CallRecord) => void): unknown;
}

export interface CallCapture {
  /** Give it to the B2BUA's `trace` (with the others: the hooks can be chained). */
  readonly trace: TraceHook;
  /** A call's messages in the order they passed (undefined: nothing captured for it). */
  messages(id: string): { messages: CapturedMessage[]; dropped: number } | undefined;
  /** What is held now, for tests and metrics. */
  readonly size: { calls: number; pending: number; bytes: number };
  close(): void;
}

interface Held {
  /** Order of passing (the clock's milliseconds tie). */
  seq: number;
  at: number;
  direction: 'in' | 'out';
  remote: string;
  firstLine: string;
  bytes: number;
  text: string;
  /** Unknown while the message waits to be claimed. */
  peer?: 'caller' | 'destination';
}

interface CallEntry {
  messages: Held[];
  bytes: number;
  dropped: number;
  callIds: string[];
}

interface Pending {
  since: number;
  messages: Held[];
  bytes: number;
}

const CALL_ID = /^(?:call-id|i)[ \t]*:[ \t]*(\S+)/im;

/**
 * A per-call capture of the SIP messages, for a ladder diagram like sngrep's: the `trace` hook
 * sees each message; its Call-ID ties it to a call once the call's record names it (the A leg's
 * at `call`, the B leg's at the `update` that sets `bLeg.callId`). Bounded per call, in calls,
 * in bytes, and in Call-IDs not yet claimed.
 *
 * On its own, with a plain B2BUA (the trace hook must exist before the B2BUA does):
 *
 *     let capture: CallCapture | undefined;
 *     const b2bua = new B2bua({ transports, route, trace: (...a) => capture?.trace(...a) });
 *     capture = createCallCapture(b2bua, { maxMessagesPerCall: 200 });
 *     capture.messages(record.id);
 */
export function createCallCapture(b2bua: CaptureEvents, options: CaptureOptions = {}): CallCapture {
  const maxPerCall = options.maxMessagesPerCall ?? 200;
  const maxCalls = options.maxCalls ?? 1000;
  const maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  const pendingMs = options.pendingMs ?? 32_000;
  const maxPending = options.maxPending ?? 256;
  const now = options.now ?? Date.now;
  /** By record id, oldest first. */
  const calls = new Map<string, CallEntry>();
  const byCallId = new Map<string, { entry: CallEntry; peer: 'caller' | 'destination' }>();
  /** By Call-ID, oldest first. */
  const pending = new Map<string, Pending>();
  let bytes = 0;
  let seq = 0;

  const forgetPending = (callId: string, p: Pending) => {
    pending.delete(callId);
    bytes -= p.bytes;
  };
  const forgetCall = (id: string, e: CallEntry) => {
    calls.delete(id);
    bytes -= e.bytes;
    for (const c of e.callIds) if (byCallId.get(c)?.entry === e) byCallId.delete(c);
  };
  /** Make room for `need` bytes: expired pending Call-IDs first, then the oldest pending ones, then the oldest calls. */
  const makeRoom = (need: number, keep?: CallEntry): boolean => {
    for (const [c, p] of pending) {
      if (bytes + need <= maxBytes) break;
      forgetPending(c, p);
    }
    for (const [id, e] of calls) {
      if (bytes + need <= maxBytes) break;
      if (e !== keep) forgetCall(id, e);
    }
    return bytes + need <= maxBytes;
  };

  const add = (entry: CallEntry, m: Held): void => {
    if (entry.messages.length >= maxPerCall || !makeRoom(m.text.length, entry)) {
      entry.dropped++;
      return;
    }
    entry.messages.push(m);
    entry.bytes += m.text.length;
    bytes += m.text.length;
  };

  const claim = (record: CallRecord, callId: string, peer: 'caller' | 'destination'): void => {
    if (byCallId.has(callId)) return;
    let entry = calls.get(record.id);
    if (!entry) {
      entry = { messages: [], bytes: 0, dropped: 0, callIds: [] };
      calls.set(record.id, entry);
      for (const [id, e] of calls) {
        if (calls.size <= maxCalls) break;
        forgetCall(id, e);
      }
    }
    entry.callIds.push(callId);
    byCallId.set(callId, { entry, peer });
    const p = pending.get(callId);
    if (!p) return;
    forgetPending(callId, p);
    for (const m of p.messages) add(entry, { ...m, peer });
    // Keep the two legs' messages in the order they passed.
    entry.messages.sort((a, b) => a.seq - b.seq);
  };

  const onCall = (r: CallRecord) => claim(r, r.aLeg.callId, 'caller');
  const onUpdate = (r: CallRecord) => {
    if (r.bLeg.callId !== undefined && calls.has(r.id)) claim(r, r.bLeg.callId, 'destination');
  };
  b2bua.on('call', onCall);
  b2bua.on('update', onUpdate);

  const trace: TraceHook = (direction, data, remote, transport) => {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let end = buf.indexOf('\r\n\r\n');
    if (end < 0) end = buf.length;
    const head = buf.toString('latin1', 0, Math.min(end, 8192));
    const callId = CALL_ID.exec(head)?.[1];
    if (callId === undefined) return; // keep-alives, garbage: no call to show them in
    const at = now();
    const eol = head.indexOf('\r\n');
    const m: Held = {
      seq: seq++,
      at,
      direction,
      remote: `${transport.protocol}:${remote.address}:${remote.port}`,
      firstLine: (eol < 0 ? head : head.slice(0, eol)).slice(0, 300),
      bytes: data.byteLength,
      text: buf.toString('utf8'),
    };
    const known = byCallId.get(callId);
    if (known) return add(known.entry, { ...m, peer: known.peer });
    // Not (yet) a call's: wait to be claimed, bounded in count, age and bytes.
    for (const [c, p] of pending) {
      if (at - p.since <= pendingMs && pending.size < maxPending) break;
      forgetPending(c, p);
    }
    let p = pending.get(callId);
    if (!p) pending.set(callId, (p = { since: at, messages: [], bytes: 0 }));
    if (p.messages.length >= maxPerCall || !makeRoom(m.text.length)) return;
    if (!pending.has(callId)) return; // makeRoom forgot it
    p.messages.push(m);
    p.bytes += m.text.length;
    bytes += m.text.length;
  };

  return {
    trace,
    messages(id) {
      const e = calls.get(id);
      if (!e) return undefined;
      return {
        dropped: e.dropped,
        messages: e.messages.map((m) => ({
          at: new Date(m.at).toISOString(),
          direction: m.direction,
          peer: m.peer!,
          remote: m.remote,
          first_line: m.firstLine,
          bytes: m.bytes,
          text: m.text,
        })),
      };
    },
    get size() {
      return { calls: calls.size, pending: pending.size, bytes };
    },
    close() {
      b2bua.off('call', onCall);
      b2bua.off('update', onUpdate);
      calls.clear();
      byCallId.clear();
      pending.clear();
      bytes = 0;
    },
  };
}

/**
 * `GET /v1.0/calls/{id}/messages` (bearer token) as a route for `createHttpApi`: the call's
 * captured messages, `[ { at, direction, peer, remote, first_line, bytes, text } ]`. A call the
 * B2BUA knows but capture holds nothing for lists `[]`; `capture` undefined (capture off): 404.
 */
export function captureRoute(b2bua: { get(id: string): CallRecord | undefined }, capture: CallCapture | undefined): HttpRoute {
  return (req, res, { path, authorized }) => {
    const m = /^\/v1\.0\/calls\/([^/]+)\/messages$/.exec(path);
    if (!m) return false;
    if (req.method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET' });
    if (!authorized) throw new ApiError(401, 'unauthorized', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
    if (!capture) throw new ApiError(404, 'capture_disabled', 'message capture is off (config capture.enabled)');
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      throw new ApiError(400, 'bad_request', 'malformed percent-encoding in the path');
    }
    if (!b2bua.get(id)) throw new ApiError(404, 'not_found', 'no such call');
    const body = JSON.stringify(capture.messages(id)?.messages ?? []);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  };
}
