import { describe, expect, it } from 'vitest';
import { createResponse, parseMessage, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork, TransportError } from '../../src/transport/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { loadManifest, loadMessage } from '../support/conformance.js';
import { ClientRecorder, pair, RecordingUser, request, send } from '../support/tx-harness.js';

/** A layer on 10.0.0.2 and a raw sender on 10.0.0.1 that records what comes back. */
function rawPeer(validate?: ConstructorParameters<typeof TransactionLayer>[0]['validate']) {
  const clock = new FakeClock();
  const net = new TestNetwork({ clock });
  const user = new RecordingUser();
  const layer = new TransactionLayer({ transports: [net.transport('10.0.0.2', 5060)], user, clock, validate });
  const peer = net.transport('192.0.2.5', 5060);
  const got: SipResponse[] = [];
  // Responses go to received + the Via port (5060, 5061 for TLS, or as written): listen on all of them.
  for (const port of [5050, 5061]) net.transport('192.0.2.5', port).setReceiver({ onMessage: (b) => got.push(parseMessage(b) as SipResponse) });
  peer.setReceiver({ onMessage: (b) => got.push(parseMessage(b) as SipResponse) });
  const inject = (bytes: Uint8Array) => {
    void peer.send(bytes, { address: '10.0.0.2', port: 5060 });
    clock.advance(5);
  };
  return { clock, net, layer, user, got, inject };
}

describe('stateless checks through the layer (RFC 4475)', () => {
  const manifest = loadManifest('rfc4475');
  // What the layer itself answers. Cases whose reaction depends on the element's
  // role or policy (a registrar's 401/400, an endpoint's 406) reach the TU instead.
  const endpoint = { accept: ['application/sdp'], supported: [] as string[] };
  const byLayer: Record<string, number> = {
    'badbranch.dat': 400,
    'insuf.dat': 400,
    'unkscm.dat': 416,
    'novelsc.dat': 416,
    'bext01.dat': 420,
    'invut.dat': 415,
    'multi01.dat': 400,
    'mcl01.dat': 400,
  };
  const toTu = ['unksm2.dat', 'regaut01.dat', 'sdp01.dat', 'cparam01.dat', 'cparam02.dat', 'regescrt.dat'];

  for (const e of manifest.filter((m) => m.expect === 'semantic')) {
    it(`${e.section} ${e.file}: ${e.reaction?.response_code ?? e.reaction?.action ?? e.reaction?.['outcome' as never] ?? 'handled'}`, () => {
      const role = e.file === 'zeromf.dat' ? 'proxy' : 'uas';
      const r = rawPeer({ ...endpoint, role });
      r.inject(loadMessage('rfc4475', e));
      if (e.file === 'zeromf.dat') {
        expect(r.got.map((g) => g.status)).toEqual([483]);
      } else if (e.file === 'bcast.dat') {
        // A response matching no transaction: discarded (counted as stray), never forwarded.
        expect(r.layer.stats.strayResponses).toBe(1);
        expect(r.got).toHaveLength(0);
      } else if (byLayer[e.file] !== undefined) {
        const want = byLayer[e.file]!;
        const allowed = [e.reaction?.response_code, ...(e.reaction?.alternative_response_codes ?? [])];
        if (typeof e.reaction?.response_code === 'number') expect(allowed).toContain(want);
        expect(r.got.map((g) => g.status)).toEqual([want]);
        expect(r.user.requests).toHaveLength(0);
        if (want === 420) expect(r.got[0]!.getAll('unsupported')).toEqual(['nothingSupportsThis', 'nothingSupportsThisEither']);
        if (want === 415) expect(r.got[0]!.get('accept')).toBe('application/sdp');
      } else {
        expect(toTu).toContain(e.file);
        expect(r.user.requests).toHaveLength(1);
      }
    });
  }

  for (const e of manifest.filter((m) => m.expect === 'invalid')) {
    it(`${e.section} ${e.file}: answered or dropped, never passed up`, () => {
      const r = rawPeer();
      r.inject(loadMessage('rfc4475', e));
      expect(r.user.requests).toHaveLength(0);
      const statuses = r.got.map((g) => g.status);
      const code = e.reaction?.response_code;
      if (e.expected.type === 'response') {
        expect(statuses).toEqual([]);
        expect(r.layer.stats.malformedResponses).toBe(1);
      } else if (typeof code === 'number') {
        expect([code, ...(e.reaction?.alternative_response_codes ?? [])]).toContain(statuses[0]);
        expect(statuses).toHaveLength(1);
      } else {
        // No code named: dropped or a 400, but counted.
        expect(statuses.every((s) => s === 400)).toBe(true);
        expect(r.layer.stats.malformedRequests).toBe(1);
      }
    });
  }

  it('a 400 carries the problem in its reason phrase', () => {
    const r = rawPeer();
    r.inject(loadMessage('rfc4475', manifest.find((m) => m.file === 'clerr.dat')!));
    expect(r.got[0]!.status).toBe(400);
    expect(r.got[0]!.reason).toBe('Content-Length Mismatch');
  });
});

describe('TransactionLayer', () => {
  it('answers 481 to a CANCEL that matches no INVITE', () => {
    const p = pair();
    const cancel = request('CANCEL');
    const rec = { onResponse: (res: SipResponse) => statuses.push(res.status) };
    const statuses: number[] = [];
    p.a.sendRequest(cancel, { address: '10.0.0.2', port: 5060 }, rec);
    p.clock.advance(10);
    expect(statuses).toEqual([481]);
    expect(p.bUser.cancels).toHaveLength(0);
  });

  it('a CANCEL after the final response gets 200 but does not reach the user', () => {
    const p = pair();
    p.bUser.answer = () => 486;
    const { req: invite } = send(p, 'INVITE');
    p.clock.advance(10);
    const cancel = request('CANCEL');
    cancel.set('Via', invite.get('via')!);
    cancel.set('Call-ID', invite.callId);
    cancel.set('From', invite.get('from')!);
    const statuses: number[] = [];
    p.a.sendRequest(cancel, { address: '10.0.0.2', port: 5060 }, { onResponse: (r) => statuses.push(r.status) }, { keepVia: true });
    p.clock.advance(10);
    expect(statuses).toEqual([200]);
    expect(p.bUser.cancels).toHaveLength(0);
  });

  it('stamps received/rport and answers to them, reaching a caller behind NAT (RFC 3581)', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const user = new RecordingUser();
    user.answer = () => 200;
    new TransactionLayer({ transports: [net.transport('10.0.0.2', 5060)], user, clock });
    const nat = net.transport('203.0.113.7', 40123); // the NAT's public mapping
    const got: string[] = [];
    nat.setReceiver({ onMessage: (b) => got.push(Buffer.from(b).toString()) });
    const req = request('OPTIONS');
    req.prepend('Via', 'SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKnat1;rport');
    void nat.send(req.toBytes(), { address: '10.0.0.2', port: 5060 });
    clock.advance(10);
    expect(got).toHaveLength(1);
    expect(got[0]).toContain('Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKnat1;rport=40123;received=203.0.113.7');
    expect(user.requests[0]!.req.topVia!.received).toBe('203.0.113.7');
  });

  it('passes responses matching no transaction to the user as strays, and drops malformed ones', () => {
    const p = pair();
    const res = createResponse(request('INVITE').prepend('Via', 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKgone'), 200, { toTag: 't' });
    void p.bT.send(res.toBytes(), { address: '10.0.0.1', port: 5060 });
    void p.bT.send(Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nl: 0\r\n\r\n'), { address: '10.0.0.1', port: 5060 });
    void p.bT.send(Buffer.from('SIP/2.0 999 Nope\r\n\r\n'), { address: '10.0.0.1', port: 5060 });
    p.clock.advance(10);
    expect(p.aUser.strays.map((r) => r.status)).toEqual([200]);
    expect(p.a.stats.malformedResponses).toBe(2);
  });

  it('matches a response to its client transaction by branch and CSeq method (§17.1.3): the same branch with another method is a stray', () => {
    const p = pair();
    const invite = send(p, 'INVITE');
    const bye = send(p, 'BYE');
    // Answers forged by the other side: each transaction's branch with the other's method, and a
    // branch that reads as the BYE's table entry (its branch, `;`, the method) under an INVITE CSeq.
    const answer = (req: SipRequest, branch: string, method: string) => {
      const res = createResponse(req, 200, { toTag: 't' });
      res.set('CSeq', `1 ${method}`);
      res.remove('via');
      res.prepend('Via', `SIP/2.0/UDP 10.0.0.1:5060;branch=${branch}`);
      void p.bT.send(res.toBytes(), { address: '10.0.0.1', port: 5060 });
    };
    const inviteBranch = invite.req.topVia!.branch!;
    const byeBranch = bye.req.topVia!.branch!;
    answer(invite.req, inviteBranch, 'BYE');
    answer(bye.req, byeBranch, 'INVITE');
    answer(bye.req, `"${byeBranch};BYE"`, 'INVITE');
    p.clock.advance(1);
    expect(invite.rec.responses).toHaveLength(0);
    expect(bye.rec.responses).toHaveLength(0);
    expect(p.a.stats.strayResponses).toBe(3);
    // Their own answers still match.
    answer(invite.req, inviteBranch, 'INVITE');
    answer(bye.req, byeBranch, 'BYE');
    p.clock.advance(1);
    expect(invite.rec.statuses).toEqual([200]);
    expect(bye.rec.statuses).toEqual([200]);
  });

  it('matches RFC 2543 requests (no magic cookie) by the fallback key', () => {
    const p = pair();
    const req = request('OPTIONS');
    req.prepend('Via', 'SIP/2.0/UDP 10.0.0.1:5060;branch=old2543');
    void p.aT.send(req.toBytes(), { address: '10.0.0.2', port: 5060 });
    void p.aT.send(req.toBytes(), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.b.stats.retransmissionsAbsorbed).toBe(1);
  });

  it('sends a request too large for UDP over TCP when there is one (§18.1.1)', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const aUser = new RecordingUser();
    const bUser = new RecordingUser();
    bUser.answer = () => 200;
    const a = new TransactionLayer({ transports: [net.transport('10.0.0.1', 5060), net.transport('10.0.0.1', 5060, { reliable: true })], user: aUser, clock });
    new TransactionLayer({ transports: [net.transport('10.0.0.2', 5060), net.transport('10.0.0.2', 5060, { reliable: true })], user: bUser, clock });
    const req = request('MESSAGE');
    req.body = Buffer.alloc(2000, 'x');
    const statuses: number[] = [];
    const tx = a.sendRequest(req, { address: '10.0.0.2', port: 5060 }, { onResponse: (r) => statuses.push(r.status) });
    clock.advance(10);
    expect(tx.dest.transport.protocol).toBe('tcp');
    expect(req.topVia!.transport).toBe('TCP');
    expect(statuses).toEqual([200]);
  });

  it('refuses new requests with 503 beyond maxTransactions', () => {
    const p = pair({ layer: { maxTransactions: 2 } });
    for (let i = 0; i < 3; i++) send(p, 'OPTIONS');
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(2);
    expect(p.net.packets('SIP/2.0 503')).toHaveLength(1);
  });
});

describe('transports with post()', () => {
  it('sends through post() when a transport has it, and a post() failure is a transport error (503)', async () => {
    const clock = new FakeClock(1_000_000);
    const sent: string[] = [];
    let promised = 0;
    const transport = {
      protocol: 'udp',
      reliable: false,
      local: { address: '10.0.0.1', port: 5060 },
      setReceiver(): void {},
      send(): Promise<void> {
        promised++;
        return Promise.resolve();
      },
      post(bytes: Uint8Array, to: { address: string; port: number }, onError: (e: TransportError) => void): void {
        sent.push(Buffer.from(bytes).toString().split('\r\n')[0]!);
        if (to.port === 9) queueMicrotask(() => onError(new TransportError('SEND_FAILED', 'unreachable', to)));
      },
      close: () => Promise.resolve(),
    };
    const layer = new TransactionLayer({ transports: [transport], user: new RecordingUser(), clock });
    const ok = new ClientRecorder();
    layer.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 5060, transport: 'udp' }, ok);
    const bad = new ClientRecorder();
    layer.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 9, transport: 'udp' }, bad);
    await Promise.resolve();
    expect(sent).toEqual(['OPTIONS sip:bob@10.0.0.2 SIP/2.0', 'OPTIONS sip:bob@10.0.0.2 SIP/2.0']);
    expect(promised).toBe(0);
    expect(ok.statuses).toEqual([]);
    expect(bad.statuses).toEqual([503]);
    expect(bad.transportErrors).toBe(1);
    expect(layer.stats.transportErrors).toBe(1);
  });
});
