import { afterEach, describe, expect, it } from 'vitest';
import type { CallRecord, MediaContext } from '../../src/b2bua/index.js';
import { MediaRelay } from '../../examples/trunk-server/rtp-relay.js';
import { readSdp } from '../../examples/trunk-server/sdp-rewrite.js';

const relays: MediaRelay[] = [];
afterEach(() => {
  for (const r of relays.splice(0)) r.close();
});

function relay(pairs = 16) {
  const logs: string[] = [];
  // Ephemeral-range ports are often in use: a spread-out range below them, random per run.
  const min = 24_000 + 2 * Math.floor(Math.random() * 3000);
  const r = new MediaRelay({ addresses: { IP4: '127.0.0.1', IP6: '::1' }, ports: { min, max: min + 2 * (pairs - 1) }, log: (_l, e, f) => logs.push(`${e} ${JSON.stringify(f)}`) });
  relays.push(r);
  return { r, logs, hooks: r.hooks() };
}

const record = (id: string, state: CallRecord['state'] = 'answered') => ({ id, state }) as CallRecord;
const ctx = (id: string, from: MediaContext['from'], phase: MediaContext['phase'] = 'initial'): MediaContext => ({ record: record(id), from, phase });
const text = (b: string | Uint8Array) => (typeof b === 'string' ? b : Buffer.from(b).toString());
const sdp = (o: string, lines: string[]) => ['v=0', `o=${o}`, 's=-', 't=0 0', ...lines, ''].join('\r\n');
const originOf = (s: string) => /^o=(.*)$/m.exec(s)![1]!.trim();

describe('RTP relay: per-call state', () => {
  it('o= toward each side: fixed origin, version bumped by one exactly when what that side gets changes (RFC 3264 §8), also across a fail-over callee', async () => {
    const { hooks } = relay();
    const offer = sdp('alice 100 7 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0']);
    const toCallee = text(await hooks.onOffer!(Buffer.from(offer), ctx('c1', 'caller')));
    expect(originOf(toCallee)).toBe('alice 100 7 IN IP4 127.0.0.1');
    const early = sdp('gw1 555 1 IN IP4 10.0.0.2', ['c=IN IP4 10.0.0.2', 'm=audio 6000 RTP/AVP 0']);
    const toCaller1 = text(await hooks.onAnswer!(Buffer.from(early), ctx('c1', 'callee', 'early')));
    expect(originOf(toCaller1)).toBe('gw1 555 1 IN IP4 127.0.0.1');
    // The same SDP again (183 then 200): same version.
    expect(originOf(text(await hooks.onAnswer!(Buffer.from(early), ctx('c1', 'callee', 'answer'))))).toBe('gw1 555 1 IN IP4 127.0.0.1');
    // Another gateway answers after a fail-over: the caller keeps one origin, one version up, as its SDP changed.
    const other = sdp('gw2 999 42 IN IP4 10.0.0.3', ['c=IN IP4 10.0.0.3', 'm=audio 6100 RTP/AVP 8']);
    expect(originOf(text(await hooks.onAnswer!(Buffer.from(other), ctx('c1', 'callee', 'answer'))))).toBe('gw1 555 2 IN IP4 127.0.0.1');
    // A re-offer from the caller that changes only what the relay hides (its own port): the callee's SDP is unchanged.
    const reoffer = sdp('alice 100 8 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4100 RTP/AVP 0']);
    const again = text(await hooks.onOffer!(Buffer.from(reoffer), ctx('c1', 'caller', 'update')));
    expect(again).toBe(toCallee);
    const withVideo = sdp('alice 100 9 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4100 RTP/AVP 0', 'm=video 4200 RTP/AVP 96']);
    expect(originOf(text(await hooks.onOffer!(Buffer.from(withVideo), ctx('c1', 'caller', 'update'))))).toBe('alice 100 8 IN IP4 127.0.0.1');
  });

  it('a stream disabled (port 0) gives its two pairs back; a call\'s end gives back the rest', async () => {
    const { r, hooks } = relay(8);
    const full = r.pool.free;
    const av = sdp('- 1 1 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'm=video 4002 RTP/AVP 96']);
    await hooks.onOffer!(Buffer.from(av), ctx('c2', 'caller'));
    expect(r.pool.free).toBe(full - 4);
    const videoOff = sdp('- 1 2 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'm=video 0 RTP/AVP 96']);
    const out = text(await hooks.onOffer!(Buffer.from(videoOff), ctx('c2', 'caller', 'update')));
    expect(readSdp(out).streams.map((s) => s.port !== 0)).toEqual([true, false]);
    expect(r.pool.free).toBe(full - 2);
    hooks.onEnd!(record('c2', 'hangup'));
    expect(r.pool.free).toBe(full);
    expect(r.calls.size).toBe(0);
  });

  it('a re-offer that moves a stream to IPv6 re-anchors it on the IPv6 address; an answer in the other family is refused', async () => {
    const { hooks } = relay();
    const v4 = sdp('- 1 1 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0']);
    await hooks.onOffer!(Buffer.from(v4), ctx('c3', 'caller'));
    const v6 = sdp('- 1 2 IN IP6 fd00::1', ['c=IN IP6 fd00::1', 'm=audio 4000 RTP/AVP 0']);
    const out = readSdp(text(await hooks.onOffer!(Buffer.from(v6), ctx('c3', 'caller', 'update'))));
    expect([out.streams[0]!.family, out.streams[0]!.address]).toEqual(['IP6', '::1']);
    await expect(Promise.resolve(hooks.onAnswer!(Buffer.from(v4), ctx('c3', 'callee', 'update')))).rejects.toMatchObject({ code: 'sdp.unsupported_family' });
  });

  it('ports reserved when a call is routed are given back if the call never reaches the media hooks (cancelled while routing)', async () => {
    const { r } = relay(4);
    const full = r.pool.free;
    expect(await r.admit('c4', Buffer.from(sdp('- 1 1 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0'])))).toBeUndefined();
    expect(r.pool.free).toBe(full - 2);
    await new Promise((res) => setImmediate(res));
    expect(r.pool.free).toBe(full);
    expect(r.calls.size).toBe(0);
  });

  it('admission: malformed SDP 400, an unsupported family 488, too few ports 503 with media.ports_exhausted; a late offer (no SDP) reserves nothing', async () => {
    const { r, logs } = relay(2);
    const r6 = new MediaRelay({ addresses: { IP4: '127.0.0.1', IP6: null }, ports: r.pool.range, log: () => undefined });
    expect(await r.admit('x', Buffer.from('v=0\r\nm=audio 4000 RTP/AVP 0\r\n'))).toEqual({ reject: 400, phrase: 'Malformed SDP' });
    expect(await r6.admit('y', Buffer.from(sdp('- 1 1 IN IP6 ::1', ['c=IN IP6 ::1', 'm=audio 4000 RTP/AVP 0'])))).toEqual({ reject: 488 });
    const av = sdp('- 1 1 IN IP4 10.0.0.1', ['c=IN IP4 10.0.0.1', 'm=audio 4000 RTP/AVP 0', 'm=video 4002 RTP/AVP 96']);
    expect(await r.admit('z', Buffer.from(av))).toEqual({ reject: 503 });
    expect(logs.filter((l) => l.startsWith('media.ports_exhausted'))).toHaveLength(1);
    expect(r.pool.free).toBe(2);
    expect(await r.admit('w', new Uint8Array(0))).toBeUndefined();
    expect(r.pool.free).toBe(2);
  });
});

describe('RTP relay: the caller\'s answer in an ACK', () => {
  it('cannot be refused, so an unusable one crosses as it is, with a log line, instead of a rejected promise nobody catches', async () => {
    const { r, hooks, logs } = relay();
    const r4 = new MediaRelay({ addresses: { IP4: '127.0.0.1', IP6: null }, ports: r.pool.range, log: (_l, e) => logs.push(e) });
    relays.push(r4);
    const h4 = r4.hooks();
    // Late offer: the callee's offer comes in its 200, the caller answers in the ACK, in IPv6.
    await h4.onOffer!(Buffer.from(sdp('- 1 1 IN IP4 10.0.0.2', ['c=IN IP4 10.0.0.2', 'm=audio 6000 RTP/AVP 0'])), ctx('c5', 'callee'));
    const answer = sdp('- 1 1 IN IP6 fd00::1', ['c=IN IP6 fd00::1', 'm=audio 4000 RTP/AVP 0']);
    expect(text(await h4.onAnswer!(Buffer.from(answer), ctx('c5', 'caller', 'answer')))).toBe(answer);
    expect(logs).toContain('media.answer_unanchored');
    // From the callee the same failure still throws: the B2BUA ends the call (500).
    await expect(Promise.resolve(hooks.onAnswer!(Buffer.from('v=0\r\nm=audio 1 RTP/AVP 0\r\n'), ctx('c6', 'callee', 'answer')))).rejects.toMatchObject({ code: 'sdp.malformed' });
  });
});
