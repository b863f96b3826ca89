import { isIP } from 'node:net';
import {
  appendHeaders,
  parseNameAddr,
  SipRequest,
  type HeaderInit,
  type SipMessage,
  type SipResponse,
  type SipUri,
} from '../parser/index.js';
import { bareHost, type TransportAddress } from '../transport/index.js';
import { targetFromUri, type ServerTransaction, type Target } from '../transaction/index.js';
import { ownBytes, ownText } from '../util/own.js';

export type DialogState = 'early' | 'confirmed' | 'terminated';

/**
 * What owns a dialog, as the core sees it: the core routes the dialog's requests and the
 * ACKs for its 2xx here. (Calls implement it; the core knows nothing else about them.)
 */
export interface DialogOwner {
  /** A request arrived in the dialog, its CSeq order already checked (§12.2.2). */
  handleInDialog(req: SipRequest, tx: ServerTransaction, dialog: Dialog): void;
  /** The ACK for a 2xx this side sent (§13.3.1.4). */
  handleAck(ack: SipRequest): void;
}

export interface DialogId {
  callId: string;
  localTag: string;
  remoteTag: string;
}

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return callId + '\u0000' + localTag + '\u0000' + remoteTag;
}

export interface InDialogRequestOptions {
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
  /** Use this CSeq number instead of the next one (ACK and CANCEL reuse the INVITE's). */
  cseq?: number;
}

/** URI parameters that may not appear in a Request-URI (§19.1.1 Table 1). */
const NOT_IN_RURI = ['method', 'ttl', 'maddr', 'lr'];

/**
 * A dialog (RFC 3261 §12): identity, state, sequence numbers, remote target and
 * route set, and the construction of requests inside it (§12.2.1.1).
 */
export class Dialog {
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  readonly role: 'uac' | 'uas';
  state: DialogState;
  localSeq: number;
  remoteSeq: number | undefined;
  /** Local and remote party (name-addr, without tag). */
  readonly localUri: string;
  readonly remoteUri: string;
  /** Contact of the peer: where requests go when there is no route set. */
  remoteTarget: string;
  /**
   * Route set, in the order requests carry it (§12.1.1 / §12.1.2). Replaced, not edited: an
   * empty one is one frozen array all dialogs share (most have none; issue #16).
   */
  readonly routeSet: string[];
  readonly secure: boolean;
  /** Where the peer's messages came from: reaches a NATed peer whose Contact is private (symmetric routing). */
  readonly peerAddress: TransportAddress | undefined;
  /** Our Contact. */
  readonly localContact: string;
  // The last ACK we sent for a 2xx, as what rebuilds it (see lastAck): a held call keeps no parsed ACK.
  private ackSeq = -1;
  // Its body, or (rare: a challenged INVITE) its body and the credentials it carries (KeptAck).
  private ackBody: Uint8Array | KeptAck | undefined = undefined;
  /** @internal Who the user agent routes this dialog's requests to, while it has it registered. */
  owner: DialogOwner | undefined = undefined;

  constructor(init: {
    callId: string;
    localTag: string;
    remoteTag: string;
    role: 'uac' | 'uas';
    state: DialogState;
    localSeq: number;
    remoteSeq: number | undefined;
    localUri: string;
    remoteUri: string;
    remoteTarget: string;
    routeSet: string[];
    secure: boolean;
    peerAddress: TransportAddress | undefined;
    localContact: string;
  }) {
    // A dialog lasts as long as its call: its strings are copied out of the messages they were
    // read from, which would otherwise stay whole behind each of them (see ownText).
    this.callId = ownText(init.callId);
    this.localTag = ownText(init.localTag);
    this.remoteTag = ownText(init.remoteTag);
    this.role = init.role;
    this.state = init.state;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.localUri = ownText(init.localUri);
    this.remoteUri = ownText(init.remoteUri);
    this.remoteTarget = ownText(init.remoteTarget);
    this.routeSet = ownRoutes(init.routeSet);
    this.secure = init.secure;
    this.peerAddress = init.peerAddress;
    // Our own Contact: one string the user agent shares among its dialogs (contactFor).
    this.localContact = init.localContact;
  }

  /**
   * The last ACK we sent for a 2xx (re-sent when that 2xx is retransmitted, §13.2.2.4). Only its
   * CSeq and body are kept: reading it builds the ACK again as the dialog builds requests,
   * which is the ACK that was sent while the route set and remote target are unchanged.
   */
  get lastAck(): SipRequest | undefined {
    if (this.ackSeq < 0) return undefined;
    const kept = this.ackBody;
    if (kept instanceof KeptAck) return this.createRequest('ACK', { cseq: this.ackSeq, body: kept.body, headers: kept.credentials });
    return this.createRequest('ACK', { cseq: this.ackSeq, body: kept });
  }

  set lastAck(ack: SipRequest | undefined) {
    if (ack === undefined) {
      this.ackSeq = -1;
      this.ackBody = undefined;
      return;
    }
    this.ackSeq = ack.cseq.seq;
    const body = ack.body.length > 0 ? ownBytes(ack.body) : undefined;
    const credentials = credentialsOf(ack);
    this.ackBody = credentials === undefined ? body : new KeptAck(body, credentials);
  }

  /**
   * @internal Whether the last ACK we sent for a 2xx is the bodiless one of CSeq `seq`: what a
   * dialog built from that 2xx alone (fromAnswer) sends again.
   */
  ackRebuildable(seq: number): boolean {
    return this.ackSeq === seq && this.ackBody === undefined;
  }

  /** @internal The credentials our last ACK for a 2xx carried (the INVITE's, §13.2.2.4), if any. */
  get ackCredentials(): Array<[string, string]> | undefined {
    const kept = this.ackBody;
    return kept instanceof KeptAck ? kept.credentials : undefined;
  }

  /** The CSeq number of the last ACK we sent for a 2xx (undefined: none yet). */
  get lastAckSeq(): number | undefined {
    return this.ackSeq < 0 ? undefined : this.ackSeq;
  }

  /** Call-ID, local and remote tag in one string (made on each read: the user agent indexes its dialogs by tag, see TagIndex). */
  get key(): string {
    return dialogKey(this.callId, this.localTag, this.remoteTag);
  }

  get id(): DialogId {
    return { callId: this.callId, localTag: this.localTag, remoteTag: this.remoteTag };
  }

  /**
   * UAC side (§12.1.2): from the INVITE we sent and a 1xx/2xx with a To tag.
   * The route set is the response's Record-Route, reversed. `localTag`: our From tag as a string
   * the caller keeps for as long as the dialog (the call's own), shared rather than copied.
   */
  static fromUac(invite: SipRequest, res: SipResponse, destination: TransportAddress, localContact: string, localTag?: string): Dialog {
    const contact = firstContact(res);
    const d = new Dialog({
      callId: invite.callId,
      localTag: localTag === undefined ? invite.from.tag! : '',
      remoteTag: res.to.tag!,
      role: 'uac',
      state: res.status >= 200 ? 'confirmed' : 'early',
      localSeq: invite.cseq.seq,
      remoteSeq: undefined,
      localUri: stripTag(invite.get('from')!),
      remoteUri: stripTag(invite.get('to')!),
      remoteTarget: contact ?? invite.uri,
      routeSet: res.getAll('record-route').reverse(),
      secure: invite.uri.toLowerCase().startsWith('sips:'),
      peerAddress: destination,
      localContact,
    });
    return localTag === undefined ? d : d.sharing(localTag);
  }

  /**
   * UAS side (§12.1.1): from the INVITE received and the tag we put in To (`localTag`: a string
   * the caller keeps for as long as the dialog, e.g. the call's own, shared rather than copied).
   */
  static fromUas(invite: SipRequest, localTag: string, source: TransportAddress, localContact: string): Dialog {
    const d = new Dialog({
      callId: invite.callId,
      localTag: '',
      remoteTag: invite.from.tag ?? '',
      role: 'uas',
      state: 'early',
      localSeq: 0,
      remoteSeq: invite.cseq.seq,
      localUri: stripTag(invite.get('to')!),
      remoteUri: stripTag(invite.get('from')!),
      remoteTarget: firstContact(invite) ?? invite.from.uriText,
      routeSet: invite.getAll('record-route'),
      secure: invite.uri.toLowerCase().startsWith('sips:'),
      peerAddress: source,
      localContact,
    });
    return d.sharing(localTag);
  }

  /**
   * Our tag as the call keeps it: one string for the call and its dialog, not a copy each (the
   * constructor copies what it is given, which may be cut out of a message; issue #16).
   */
  private sharing(localTag: string): Dialog {
    (this as { localTag: string }).localTag = localTag;
    return this;
  }

  /**
   * @internal
   * UAC: the dialog a 2xx from another fork of the same INVITE as `d` establishes (§13.2.2.4)
   * — built from `d` (Call-ID, From, To, our tag and Contact) and the 2xx, without the INVITE:
   * what it takes to ACK that 2xx and BYE the dialog.
   */
  static fork(d: Dialog, res: SipResponse, inviteSeq: number, destination: TransportAddress): Dialog {
    const f = new Dialog({
      callId: d.callId,
      localTag: '',
      remoteTag: res.to.tag!,
      role: 'uac',
      state: 'confirmed',
      localSeq: inviteSeq,
      remoteSeq: undefined,
      localUri: d.localUri,
      remoteUri: d.remoteUri,
      remoteTarget: firstContact(res) ?? d.remoteTarget,
      routeSet: res.getAll('record-route').reverse(),
      secure: d.secure,
      peerAddress: destination,
      localContact: d.localContact,
    });
    return f.sharing(d.localTag);
  }

  /**
   * @internal
   * UAC: a confirmed dialog as its last ACK for a 2xx (`lastAck`, as sent but for the Via)
   * describes it — Call-ID, tags, From and To, remote target — with what the ACK does not say.
   * For a dialog without a route set (the ACK's Request-URI is the remote target): what an
   * ended call keeps while its INVITE transaction waits out Timer M is that ACK's text, not the
   * dialog (issue #16); a late 2xx rebuilds it.
   */
  static fromAck(ack: SipRequest, peerAddress: TransportAddress | undefined, localContact: string, secure: boolean): Dialog {
    const d = new Dialog({
      callId: ack.callId,
      localTag: ack.from.tag!,
      remoteTag: ack.to.tag ?? '',
      role: 'uac',
      state: 'confirmed',
      localSeq: ack.cseq.seq,
      remoteSeq: undefined,
      localUri: stripTag(ack.get('from')!),
      remoteUri: stripTag(ack.get('to')!),
      remoteTarget: ack.uri,
      routeSet: [],
      secure,
      peerAddress,
      localContact,
    });
    d.lastAck = ack;
    return d;
  }

  /**
   * @internal
   * UAC: the confirmed dialog a 2xx to our INVITE (of CSeq `inviteSeq`, sent to `destination`)
   * establishes, from that 2xx alone (§12.1.2, §13.2.2.4) with what it does not say: Call-ID and
   * our From (URI and tag) as the 2xx copies them from the INVITE (§8.2.6.2: they MUST equal the
   * request's), To with the answering fork's tag, its Contact as remote target (the To URI if it
   * has none, which a 2xx MUST have, §13.3.1.4) and its Record-Route, reversed, as route set. Its
   * last ACK is the bodiless one of CSeq `inviteSeq`. What an ended call without a route set keeps
   * for Timer M is what the 2xx does not say, not the ACK (issue #16): see outgoing-call.ts.
   */
  static fromAnswer(res: SipResponse, inviteSeq: number, destination: TransportAddress, localContact: string, secure: boolean): Dialog {
    const to = res.to;
    const d = new Dialog({
      callId: res.callId,
      localTag: res.from.tag!,
      remoteTag: to.tag!,
      role: 'uac',
      state: 'confirmed',
      localSeq: inviteSeq,
      remoteSeq: undefined,
      localUri: stripTag(res.get('from')!),
      remoteUri: stripTag(res.get('to')!),
      remoteTarget: firstContact(res) ?? to.uriText,
      routeSet: res.getAll('record-route').reverse(),
      secure,
      peerAddress: destination,
      localContact,
    });
    d.ackSeq = inviteSeq;
    return d;
  }

  /**
   * @internal
   * UAC: the 2xx to the INVITE confirms the dialog (§13.2.2.4): its Contact is the remote
   * target and its Record-Route, reversed, the route set — recomputed, as the 2xx may
   * differ from the 1xx that created the early dialog (§12.1.2).
   */
  confirm(res: SipResponse): void {
    this.state = 'confirmed';
    this.refreshTarget(res);
    (this as { routeSet: string[] }).routeSet = ownRoutes(res.getAll('record-route').reverse());
  }

  /** A target refresh (re-INVITE / UPDATE and their 2xx) replaces the remote target (§12.2). */
  refreshTarget(m: SipMessage): void {
    const c = firstContact(m);
    if (c) this.remoteTarget = ownText(c);
  }

  /**
   * Build a request inside the dialog (§12.2.1.1): To/From with tags, Call-ID,
   * next CSeq, Request-URI and Route from the remote target and route set —
   * loose routing when the first route has `lr`, the strict-router form otherwise.
   */
  createRequest(method: string, options: InDialogRequestOptions = {}): SipRequest {
    let ruri: string;
    const routes = this.routeSet.slice();
    if (routes.length === 0) {
      ruri = this.remoteTarget;
    } else {
      const first = parseNameAddr(routes[0]!, 'route');
      const u = first.uri;
      if (u.kind === 'sip' && u.lr) {
        ruri = this.remoteTarget;
      } else {
        // Strict router: it becomes the Request-URI, the remote target goes last in Route.
        const r = u.kind === 'sip' ? u.clone() : u;
        if (r.kind === 'sip') for (const p of NOT_IN_RURI) r.params.delete(p);
        ruri = r.toString();
        routes.shift();
        routes.push('<' + this.remoteTarget + '>');
      }
    }
    const req = new SipRequest(method, ruri);
    req.append('Max-Forwards', 70);
    req.append('From', this.localUri + ';tag=' + this.localTag);
    req.append('To', this.remoteUri + (this.remoteTag ? ';tag=' + this.remoteTag : ''));
    req.append('Call-ID', this.callId);
    let seq: number;
    if (options.cseq !== undefined) seq = options.cseq;
    else {
      this.localSeq = this.localSeq === 0 ? 1 + Math.floor(Math.random() * 1000) : this.localSeq + 1;
      seq = this.localSeq;
    }
    req.append('CSeq', `${seq} ${method}`);
    for (const r of routes) req.append('Route', r);
    if (method !== 'ACK' && method !== 'CANCEL' && method !== 'BYE') req.append('Contact', this.localContact);
    appendHeaders(req, options.headers);
    if (options.body !== undefined) {
      req.body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
      req.set('Content-Type', options.contentType ?? 'application/sdp');
    }
    return req;
  }

  /**
   * Where requests in this dialog are sent: the first route (loose) or the
   * Request-URI host. When that is the peer's own Contact and it is not the
   * address its messages came from (a NAT), the source address wins (RFC 3581 spirit).
   */
  destination(req: SipRequest, transport?: string): Target {
    const routes = req.getAll('route');
    if (routes.length > 0) {
      const u = parseNameAddr(routes[0]!, 'route').uri;
      if (u.kind === 'sip') return targetFromUri(u);
    }
    const u = req.requestUri as SipUri;
    const t = u.kind === 'sip' ? targetFromUri(u) : { address: this.peerAddress?.address ?? '', port: this.peerAddress?.port ?? 5060 };
    const peer = this.peerAddress;
    if (peer && (isIP(bareHost(t.address)) === 0 || bareHost(t.address) !== peer.address)) {
      return { address: peer.address, port: peer.port, transport: transport ?? t.transport };
    }
    return transport ? { ...t, transport } : t;
  }

  /**
   * Check a request received in the dialog (§12.2.2): its CSeq must be higher
   * than the last one. Returns false for an out-of-order request (answer 500).
   */
  acceptRemoteSeq(req: SipRequest): boolean {
    if (req.method === 'ACK' || req.method === 'CANCEL') return true;
    const seq = req.cseq.seq;
    if (this.remoteSeq !== undefined && seq <= this.remoteSeq) return false;
    this.remoteSeq = seq;
    return true;
  }
}

/**
 * @internal The credentials a request carries (Authorization, Proxy-Authorization), as headers
 * to put in another: the ACK for a 2xx carries the INVITE's (RFC 3261 §13.2.2.4).
 */
export function credentialsOf(m: SipMessage): Array<[string, string]> | undefined {
  let out: Array<[string, string]> | undefined;
  for (const name of ['Authorization', 'Proxy-Authorization']) for (const v of m.getAll(name)) (out ??= []).push([name, ownText(v)]);
  return out;
}

/** The last ACK's body and credentials, when it carried credentials. */
class KeptAck {
  constructor(
    readonly body: Uint8Array | undefined,
    readonly credentials: Array<[string, string]>,
  ) {}
}

/** The empty route set every dialog without one shares (a 32-byte array each otherwise). */
const NO_ROUTES: string[] = Object.freeze([]) as unknown as string[];

/** A route set to keep: its entries copied out of the message they were read from (see ownText), or NO_ROUTES. */
function ownRoutes(routes: string[]): string[] {
  if (routes.length === 0) return NO_ROUTES;
  for (let i = 0; i < routes.length; i++) routes[i] = ownText(routes[i]!);
  return routes;
}

function stripTag(v: string): string {
  const na = parseNameAddr(v);
  na.params.delete('tag');
  return na.toString();
}

function firstContact(m: SipMessage): string | undefined {
  const c = m.getAll('contact')[0];
  if (!c || c === '*') return undefined;
  return parseNameAddr(c, 'contact').uriText;
}
