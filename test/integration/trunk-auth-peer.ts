import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { DigestClient } from '../../src/digest/index.js';
import { createRequest, parseMessage, type SipRequest, type SipResponse } from '../../src/parser/index.js';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

/**
 * A hand-driven SIP UDP endpoint: it writes exactly the bytes a test wants (a Via that lies
 * about the sender, a captured request replayed with a new Call-ID) and reads raw responses.
 */
export class RawSipPeer {
  private readonly inbox: SipResponse[] = [];
  private wake: (() => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly host: string,
    readonly port: number,
  ) {
    socket.on('message', (bytes) => {
      try {
        const m = parseMessage(bytes);
        if (m instanceof Object && 'status' in m) this.inbox.push(m as SipResponse);
      } catch {
        // Not our concern here: the trunk sends well-formed messages.
      }
      this.wake?.();
    });
  }

  static bind(host: string): Promise<RawSipPeer> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, host, () => resolve(new RawSipPeer(s, host, s.address().port)));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  send(msg: SipRequest, port: number, host = '127.0.0.1'): void {
    this.socket.send(msg.toBytes(), port, host);
  }

  /** The next final response (≥ 200) for this Call-ID and CSeq; provisionals are skipped. Bounded by `timeoutMs`. */
  async finalResponse(req: SipRequest, timeoutMs = 5000): Promise<SipResponse> {
    const callId = req.get('call-id');
    const cseq = req.get('cseq');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((r) => r.status >= 200 && r.get('call-id') === callId && r.get('cseq') === cseq);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no final response to ${cseq} (${callId})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** A fresh INVITE as this peer would send it; `claim` is the address its Via and Contact state. */
  invite(uri: string, user: string, domain: string, claim = this.host): SipRequest {
    return createRequest({
      method: 'INVITE',
      uri,
      from: `<sip:${user}@${domain}>`,
      to: `<${uri}>`,
      via: `SIP/2.0/UDP ${claim}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      contact: `<sip:${user}@${claim}:${this.port}>`,
      body: SDP,
      contentType: 'application/sdp',
    });
  }

  /** ACK a non-2xx final response (RFC 3261 §17.1.1.3: same branch, the response's To). */
  ack(inv: SipRequest, res: SipResponse, port: number): void {
    const ack = createRequest({
      method: 'ACK',
      uri: inv.uri,
      via: inv.get('via')!,
      from: inv.get('from')!,
      to: res.get('to')!,
      callId: inv.get('call-id')!,
      cseq: parseInt(inv.get('cseq')!, 10),
    });
    this.send(ack, port);
  }

  /** Send, wait for the final response, ACK it. */
  async transact(req: SipRequest, port: number): Promise<SipResponse> {
    this.send(req, port);
    const res = await this.finalResponse(req);
    this.ack(req, res, port);
    return res;
  }

  /** INVITE → 407 → INVITE with credentials; returns the challenge, the signed INVITE and its final response. */
  async call(uri: string, domain: string, port: number, auth: { username: string; password: string }, claim?: string) {
    const first = this.invite(uri, auth.username, domain, claim);
    const challenge = await this.transact(first, port);
    if (challenge.status !== 407) return { challenge, signed: undefined, final: challenge };
    const signed = new DigestClient(auth).authorize(first, challenge);
    const final = await this.transact(signed, port);
    return { challenge, signed, final };
  }
}

/** A copy of a captured request with a new Call-ID, From tag and branch: a replay as a new call. */
export function replayAsNewCall(captured: SipRequest): SipRequest {
  const r = captured.clone();
  r.set('Call-ID', `replay-${randomBytes(6).toString('hex')}@attacker`);
  r.set('From', captured.get('from')!.replace(/;tag=[^;>]*/, `;tag=${randomBytes(4).toString('hex')}`));
  r.set('Via', captured.get('via')!.replace(/branch=[^;]*/, `branch=z9hG4bK${randomBytes(6).toString('hex')}`));
  return r;
}
