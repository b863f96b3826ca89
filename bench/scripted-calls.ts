import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the caller noted of an answered call to hang it up later (copied out of the 200). */
export interface Answered {
  to: string;
  callId: string;
  from: string;
}

/**
 * A B2bua of one dist directory on the in-memory TestNetwork, between two scripted peers that
 * keep nothing of their own (they answer from each message alone), on a FakeClock: what
 * bench/memory.ts and bench/alloc.ts measure. The destination answers every INVITE with 200
 * and SDP and every BYE with 200; the caller ACKs each 200 to its INVITE (built from the 200
 * alone) and notes what it needs to hang up, copied so that no note is a slice of a 200's text
 * (which would be counted as the B2BUA's).
 */
export async function scriptedCalls(dist: string, b2buaOptions: Record<string, unknown> = {}) {
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const { B2bua } = await import(url('b2bua/index.js'));
  const { FakeClock, TestNetwork } = await import(url('transport/index.js'));
  const { parseMessage, createResponse, createRequest } = await import(url('parser/index.js'));

  const clock = new FakeClock(1);
  const net = new TestNetwork({ clock, record: false });
  const b2bua = new B2bua({ transports: [net.transport('10.0.0.5')], clock, route: () => [{ uri: 'sip:dest@10.0.0.2:5060' }], ...b2buaOptions });
  const sdp = (ip: string) => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n`;
  const TRUNK = { address: '10.0.0.5', port: 5060 };
  const copy = (v: string) => Buffer.from(v, 'utf8').toString('utf8');

  const dest = net.transport('10.0.0.2', 5060);
  dest.setReceiver({
    onMessage: (bytes: Uint8Array) => {
      const m = parseMessage(bytes);
      if (m.type !== 'request' || m.method === 'ACK') return;
      const res = createResponse(m, 200, m.method === 'INVITE' ? { body: sdp('10.0.0.2'), contentType: 'application/sdp' } : {});
      if (m.method === 'INVITE') res.set('Contact', '<sip:dest@10.0.0.2:5060>');
      void dest.send(res.toBytes(), TRUNK);
    },
    onError: () => undefined,
  });

  const answered: Answered[] = [];
  const counts = { byeOk: 0 };
  const caller = net.transport('10.0.0.1', 5060);
  caller.setReceiver({
    onMessage: (bytes: Uint8Array) => {
      const m = parseMessage(bytes);
      if (m.type !== 'response' || m.status !== 200) return;
      if (m.cseq.method === 'BYE') counts.byeOk++;
      if (m.cseq.method !== 'INVITE') return;
      const ack = createRequest({
        method: 'ACK',
        uri: m.get('contact').replace(/^<|>$/g, ''),
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ack-${m.callId}`,
        from: m.get('from'),
        to: m.get('to'),
        callId: m.callId,
        cseq: 1,
      });
      void caller.send(ack.toBytes(), TRUNK);
      answered.push({ to: copy(m.get('to')), callId: copy(m.callId), from: copy(m.get('from')) });
    },
    onError: () => undefined,
  });

  /** Advance the fake clock by `ms` in `step`s, letting the network deliver between them. */
  const settle = async (ms: number, step = 10): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };

  /** `count` INVITEs, a pause of 10 ms every 100; call ids `${tag}-${first + i}`. */
  const placeCalls = async (count: number, tag: string, first = 0): Promise<void> => {
    for (let i = first; i < first + count; i++) {
      const inv = createRequest({
        method: 'INVITE',
        uri: 'sip:+15551234567@10.0.0.5',
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-${tag}-${i};rport`,
        from: `<sip:1000@10.0.0.1>;tag=f${tag}${i}`,
        to: '<sip:+15551234567@10.0.0.5>',
        callId: `${tag}-${i}@10.0.0.1`,
        cseq: 1,
        contact: '<sip:caller@10.0.0.1:5060>',
        body: sdp('10.0.0.1'),
        contentType: 'application/sdp',
      });
      void caller.send(inv.toBytes(), TRUNK);
      if ((i - first) % 100 === 99) await settle(10, 10);
    }
  };

  /** A BYE for every call the caller noted, a pause of 10 ms every 100; the notes are then dropped. */
  const hangUp = async (): Promise<void> => {
    for (let i = 0; i < answered.length; i++) {
      const a = answered[i]!;
      const bye = createRequest({
        method: 'BYE',
        uri: 'sip:trunk@10.0.0.5:5060',
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-bye-${a.callId}`,
        from: a.from,
        to: a.to,
        callId: a.callId,
        cseq: 2,
      });
      void caller.send(bye.toBytes(), TRUNK);
      if (i % 100 === 99) await settle(10, 10);
    }
    answered.length = 0;
  };

  return { b2bua, clock, answered, counts, settle, placeCalls, hangUp };
}
