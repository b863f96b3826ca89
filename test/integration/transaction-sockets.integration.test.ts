import { afterEach, describe, expect, it } from 'vitest';
import { createRequest, createResponse, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { TcpTransport, UdpTransport, type Transport } from '../../src/transport/index.js';
import { TransactionLayer, type ServerTransaction, type TransactionUser } from '../../src/transaction/index.js';

const layers: TransactionLayer[] = [];
afterEach(async () => {
  await Promise.all(layers.splice(0).map((l) => l.close()));
});

function waitFor<T>(register: (resolve: (v: T) => void) => void, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting')), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

async function make(kind: 'udp' | 'tcp', host: string) {
  const t: Transport = kind === 'udp' ? await UdpTransport.bind({ host }) : await TcpTransport.listen({ host });
  return t;
}

for (const kind of ['udp', 'tcp'] as const) {
  for (const host of ['127.0.0.1', '::1']) {
    describe(`real ${kind.toUpperCase()} sockets on ${host}`, () => {
      it('OPTIONS round trip', async () => {
        const bT = await make(kind, host);
        const aT = await make(kind, host);
        const b = new TransactionLayer({
          transports: [bT],
          timers: { T1: 50 },
          user: { onRequest: (req, tx) => tx.respond(createResponse(req, 200, { headers: { Allow: 'INVITE, ACK, BYE, OPTIONS' } })) },
        });
        const a = new TransactionLayer({ transports: [aT], timers: { T1: 50 }, user: { onRequest: () => undefined } });
        layers.push(a, b);
        const req = createRequest({ method: 'OPTIONS', uri: `sip:b@${host.includes(':') ? `[${host}]` : host}`, from: '<sip:a@example.com>', to: '<sip:b@example.com>' });
        const res = await waitFor<SipResponse>((resolve) => a.sendRequest(req, { ...bT.local, transport: kind }, { onResponse: (r) => r.status >= 200 && resolve(r) }));
        expect(res.status).toBe(200);
        expect(res.getAll('allow')).toContain('OPTIONS');
        expect(res.topVia!.transport).toBe(kind.toUpperCase());
        // rport was filled with the port the request really came from (TCP: the connection's ephemeral port).
        if (kind === 'udp') expect(res.topVia!.rport).toBe(aT.local.port);
        else expect(typeof res.topVia!.rport).toBe('number');
      });

      it('INVITE / 200 / ACK round trip', async () => {
        const bT = await make(kind, host);
        const aT = await make(kind, host);
        let ack: (a: SipRequest) => void = () => undefined;
        const acked = new Promise<SipRequest>((r) => (ack = r));
        const bUser: TransactionUser = {
          onRequest: (req: SipRequest, tx: ServerTransaction) => {
            tx.respond(createResponse(req, 180, { toTag: 'bt' }));
            tx.respond(createResponse(req, 200, { toTag: 'bt', body: 'v=0\r\n', contentType: 'application/sdp' }));
          },
          onAck: (a) => ack(a),
        };
        const b = new TransactionLayer({ transports: [bT], timers: { T1: 50 }, user: bUser });
        const a = new TransactionLayer({ transports: [aT], timers: { T1: 50 }, user: { onRequest: () => undefined } });
        layers.push(a, b);
        const invite = createRequest({ method: 'INVITE', uri: 'sip:b@example.com', from: '<sip:a@example.com>', to: '<sip:b@example.com>', body: 'v=0\r\n', contentType: 'application/sdp' });
        const statuses: number[] = [];
        const ok = await waitFor<SipResponse>((resolve) =>
          a.sendRequest(invite, { ...bT.local, transport: kind }, {
            onResponse: (r) => {
              statuses.push(r.status);
              if (r.status === 200) resolve(r);
            },
          }),
        );
        expect(statuses).toEqual([180, 200]);
        expect(ok.bodyText).toBe('v=0\r\n');
        // The UAC core ACKs the 2xx outside the transaction (§13.2.2.4), with a new branch.
        const ackReq = createRequest({ method: 'ACK', uri: 'sip:b@example.com', from: invite.get('from')!, to: ok.get('to')!, callId: invite.callId, cseq: 1, via: a.createVia(aT) });
        await a.sendStateless(ackReq, { ...bT.local, transport: kind });
        const got = await acked;
        expect(got.callId).toBe(invite.callId);
        expect(got.to.tag).toBe('bt');
      });
    });
  }
}
