import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { parseMessage, type SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

/** Resolves true when a TCP connection to 127.0.0.1:port is refused (nothing listens there). */
function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A UDP-only gateway (its port checked to have no TCP listener; a few tries at most) behind a trunk listening on UDP and TCP. */
async function setup() {
  const atGateway: IncomingCall[] = [];
  let gw: UserAgent | undefined;
  for (let attempt = 0; attempt < 5 && !gw; attempt++) {
    const t = await UdpTransport.bind();
    const ua = new UserAgent({
      transports: [t],
      onInvite: (c) => {
        atGateway.push(c);
        c.provisional(180);
        void c.answer({ body: SDP });
      },
    });
    if (await tcpRefused(t.local.port)) gw = ua;
    else await ua.close();
  }
  if (!gw) throw new Error('no UDP port without a TCP listener found in 5 tries');
  const gateway = gw;
  stops.push(() => gateway.close());
  const config = validateConfig({
    sip: {
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: 0 },
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
      ],
    },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'integration-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      'acme.trunk.sipkit.test': {
        extensions: { '2000': { password: 'pw-2000' } },
        routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gateway.layer.transports[0]!.local.port}`] }],
      },
    },
    cdr: { path: null },
    log: { level: 'error' },
  });
  const trunk = await startTrunk(config);
  stops.push(() => trunk.stop('hangup'));
  const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
  stops.push(() => caller.close());
  return { trunk, gateway, atGateway, caller };
}

function udpPort(trunk: TrunkServer): number {
  return trunk.sip.find((s) => s.transport === 'udp')!.port;
}

/** The call's final outcome: 200 or the failure status, bounded in time. */
function outcome(call: { on(e: 'answer', f: (r: SipResponse) => void): unknown; on(e: 'failure', f: (r: SipResponse) => void): unknown }): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no final response within 10 s')), 10_000);
    const done = (r: SipResponse) => {
      clearTimeout(t);
      resolve(r);
    };
    call.on('answer', done);
    call.on('failure', done);
  });
}

describe('trunk faults of issue #14, over real sockets', () => {
  it('an INVITE too large for UDP reaches a UDP-only gateway: TCP is refused, UDP is used (RFC 3261 §18.1.1)', async () => {
    const { trunk, atGateway, caller } = await setup();
    const padding = Array.from({ length: 40 }, (_, i) => `a=x-pad-${i}:${'p'.repeat(24)}\r\n`).join('');
    const call = caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
      destination: { address: '127.0.0.1', port: udpPort(trunk), transport: 'udp' },
      from: '<sip:2000@acme.trunk.sipkit.test>',
      body: SDP + padding,
      auth: { username: '2000', password: 'pw-2000' },
    });
    const final = await outcome(call);
    expect(final.status).toBe(200);
    expect(atGateway).toHaveLength(1);
    const bInvite = atGateway[0]!.invite;
    expect(bInvite.toBytes().length).toBeGreaterThan(1600);
    expect(bInvite.topVia!.transport).toBe('UDP');
    await call.hangup();
  });

  it('Require: foo → 420 Bad Extension with Unsupported: foo; the gateway sees nothing, no call record', async () => {
    const { trunk, atGateway, caller } = await setup();
    const call = caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
      destination: { address: '127.0.0.1', port: udpPort(trunk), transport: 'udp' },
      from: '<sip:2000@acme.trunk.sipkit.test>',
      body: SDP,
      headers: { Require: 'foo' },
      auth: { username: '2000', password: 'pw-2000' },
    });
    const final = await outcome(call);
    expect(final.status).toBe(420);
    expect(final.getAll('unsupported')).toEqual(['foo']);
    expect(atGateway).toHaveLength(0);
    const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls?trunk_domain=acme.trunk.sipkit.test`, { headers: { authorization: 'Bearer tok' } });
    expect(((await res.json()) as { result: unknown[] }).result).toEqual([]);
  });

  it('Require: 100rel is understood: the call is answered', async () => {
    const { trunk, atGateway, caller } = await setup();
    const call = caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
      destination: { address: '127.0.0.1', port: udpPort(trunk), transport: 'udp' },
      from: '<sip:2000@acme.trunk.sipkit.test>',
      body: SDP,
      reliableProvisionals: 'required',
      auth: { username: '2000', password: 'pw-2000' },
    });
    const final = await outcome(call);
    expect(final.status).toBe(200);
    expect(atGateway).toHaveLength(1);
    await call.hangup();
  });

  describe('Via count', () => {
    async function rawSender(): Promise<{ sock: Socket; next: () => Promise<SipResponse> }> {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      stops.push(() => new Promise<void>((r) => sock.close(() => r())));
      const queue: SipResponse[] = [];
      let waiting: ((r: SipResponse) => void) | undefined;
      sock.on('message', (msg) => {
        const r = parseMessage(msg) as SipResponse;
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w(r);
        } else queue.push(r);
      });
      const next = () =>
        new Promise<SipResponse>((resolve, reject) => {
          const q = queue.shift();
          if (q) return resolve(q);
          const t = setTimeout(() => reject(new Error('no response within 5 s')), 5_000);
          waiting = (r) => {
            clearTimeout(t);
            resolve(r);
          };
        });
      return { sock, next };
    }

    function options(port: number, vias: number, id: string): Buffer {
      const lines = [`Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${id};rport`];
      for (let i = 1; i < vias; i++) lines.push(`Via: SIP/2.0/UDP 198.51.100.${i % 250}:5060;branch=z9hG4bK-hop-${i}`);
      return Buffer.from(
        [
          'OPTIONS sip:acme.trunk.sipkit.test SIP/2.0',
          ...lines,
          'Max-Forwards: 70',
          'From: <sip:2000@acme.trunk.sipkit.test>;tag=v1',
          'To: <sip:acme.trunk.sipkit.test>',
          `Call-ID: ${id}@127.0.0.1`,
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    }

    it('300 Vias → 400 Too Many Via Headers reaches the sender; 70 Vias → answered as usual', async () => {
      const { trunk } = await setup();
      const { sock, next } = await rawSender();
      const me = sock.address().port;
      sock.send(options(me, 300, 'many'), udpPort(trunk), '127.0.0.1');
      const refused = await next();
      expect(refused.status).toBe(400);
      expect(refused.reason).toBe('Too Many Via Headers');
      expect(refused.via.map((v) => v.branch)).toEqual(['z9hG4bK-many']);
      sock.send(options(me, 70, 'seventy'), udpPort(trunk), '127.0.0.1');
      const ok = await next();
      expect(ok.status).toBeLessThan(300);
      expect(ok.callId).toBe('seventy@127.0.0.1');
      expect(ok.via).toHaveLength(70);
    });
  });
});
