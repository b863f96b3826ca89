import { afterEach, describe, expect, it } from 'vitest';
import type { CallRecord } from 'sipkit/b2bua';
import { parseMessage, type SipRequest } from 'sipkit/parser';
import { createMediaRelay, directMedia, type MediaPart } from '../../examples/trunk-server/media.js';
import { readSdp } from '../../examples/trunk-server/sdp-rewrite.js';
import { dial, GATEWAY, run, setup } from './parts-harness.js';

// The media part alone: a plain B2bua on the in-memory SIP network, the relay's RTP sockets real
// (127.0.0.1, a random port range below the ephemeral one).

const parts: MediaPart[] = [];
afterEach(() => parts.splice(0).forEach((m) => m.close()));

function relay(pairs = 8) {
  const min = 24_000 + 2 * Math.floor(Math.random() * 3000);
  const media = createMediaRelay({ address: '127.0.0.1', address6: null, ports: { min, max: min + 2 * (pairs - 1) } });
  parts.push(media);
  return { media, min, max: min + 2 * (pairs - 1) };
}

function invite(sdp: string): SipRequest {
  const text = `INVITE sip:1@pbx.example.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:1@pbx.example.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`;
  return parseMessage(Buffer.from(text)) as SipRequest;
}

const record = { id: 'call-1', state: 'dialing' } as CallRecord;
const ipv4 = 'v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ipv6 = 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

describe('the media part', () => {
  it('admit: a refusal or an empty route passes through and takes no ports; an offer in a family the trunk has no address for gets 488, one with no c= 400', async () => {
    const { media } = relay();
    const free = media.relay.pool.free;
    expect(await media.admit(invite(ipv4), record, { reject: 403 })).toEqual({ reject: 403 });
    expect(await media.admit(invite(ipv4), record, [])).toEqual([]);
    expect(media.relay.pool.free).toBe(free);
    expect(await media.admit(invite(ipv6), record, [{ uri: 'sip:10.0.0.2' }])).toEqual({ reject: 488 });
    expect(await media.admit(invite('v=0\r\nm=audio 4000 RTP/AVP 0\r\n'), record, [{ uri: 'sip:10.0.0.2' }])).toMatchObject({ reject: 400 });
    expect(directMedia.admit(invite(ipv6), record, [{ uri: 'sip:10.0.0.2' }])).toEqual([{ uri: 'sip:10.0.0.2' }]);
  });

  it('admit: no ports left → 503', async () => {
    const { media } = relay(1);
    expect(await media.admit(invite(ipv4), record, [{ uri: 'sip:10.0.0.2' }])).toEqual({ reject: 503 });
  });

  it('on a plain B2bua: the gateway is offered the relay, each call holds two port pairs until it ends, close() frees the rest', async () => {
    const { media, min, max } = relay();
    const s = setup({ media, route: (req, { record }) => media.admit(req, record, [{ uri: `sip:+1@${GATEWAY}:5060` }]) });
    const free = media.relay.pool.free;
    const first = dial(s, 'sip:+1@pbx.example.test');
    dial(s, 'sip:+2@pbx.example.test');
    // The relay binds real sockets between the B2BUA's virtual-time steps.
    for (let i = 0; i < 20 && s.atGateway.length < 2; i++) await run(s, 50);
    await run(s);
    expect(first.answered).toBe(true);
    const offered = readSdp(Buffer.from(s.atGateway[0]!.invite.body).toString()).streams[0]!;
    expect(offered.address).toBe('127.0.0.1');
    expect(offered.port).toBeGreaterThanOrEqual(min);
    expect(offered.port).toBeLessThanOrEqual(max);
    expect(media.relay.pool.free).toBe(free - 4);
    void first.call.hangup();
    await run(s);
    expect(media.relay.pool.free).toBe(free - 2);
    media.close();
    expect(media.relay.pool.free).toBe(free);
  });
});
