import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readSdp, rewriteSdp, SdpRewriteError, type RelayAddresses, type RewritePlan } from '../../examples/trunk-server/sdp-rewrite.js';

const BOTH: RelayAddresses = { IP4: '192.0.2.1', IP6: '2001:db8::1' };
const sdp = (...lines: string[]) => lines.join('\r\n') + '\r\n';
const plan = (addresses: RelayAddresses = BOTH, base = 30000): RewritePlan => ({ addresses, port: (s) => base + 2 * s.index });

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SdpRewriteError);
    return (e as SdpRewriteError).code;
  }
  throw new Error('accepted');
}

describe('SDP rewriting for the relay', () => {
  it('IPv4: rewrites c=, o= and the m= port', () => {
    const out = rewriteSdp(sdp('v=0', 'o=- 1 1 IN IP4 10.1.1.1', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0'), plan());
    expect(out).toBe(sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 30000 RTP/AVP 0'));
  });

  it('IPv6: the c= line is rewritten to the relay IPv6 address, not left with the caller\'s (#14.16)', () => {
    const out = rewriteSdp(sdp('v=0', 'o=- 7 7 IN IP6 ::1', 's=-', 'c=IN IP6 ::1', 't=0 0', 'm=audio 4000 RTP/AVP 0'), plan());
    expect(out).toContain('c=IN IP6 2001:db8::1\r\n');
    expect(out).toContain('o=- 7 7 IN IP6 2001:db8::1\r\n');
    expect(out).toContain('m=audio 30000 RTP/AVP 0');
    expect(out).not.toMatch(/c=IN IP6 ::1\r/);
  });

  it('a media-level c= overrides the session-level one (RFC 4566 §5.7), each stream keeps its family', () => {
    const text = sdp('v=0', 'o=- 1 1 IN IP4 10.1.1.1', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'm=video 5000 RTP/AVP 96', 'c=IN IP6 fd00::5', 'a=rtpmap:96 H264/90000');
    const r = readSdp(text);
    expect(r.streams.map((s) => [s.media, s.family, s.address, s.port])).toEqual([
      ['audio', 'IP4', '10.1.1.1', 4000],
      ['video', 'IP6', 'fd00::5', 5000],
    ]);
    const out = rewriteSdp(text, plan());
    expect(out).toBe(sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 30000 RTP/AVP 0', 'm=video 30002 RTP/AVP 96', 'c=IN IP6 2001:db8::1', 'a=rtpmap:96 H264/90000'));
  });

  it('audio and video each get their own relay port; a stream with port 0 is left alone', () => {
    const text = sdp('v=0', 'o=- 1 1 IN IP4 10.1.1.1', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'm=video 0 RTP/AVP 96', 'm=video 6000 RTP/AVP 97');
    const out = rewriteSdp(text, plan());
    expect(out.match(/^m=.*$/gm)).toEqual(['m=audio 30000 RTP/AVP 0', 'm=video 0 RTP/AVP 96', 'm=video 30004 RTP/AVP 97']);
  });

  it('an active stream of a family the relay has no address for is refused (488 material)', () => {
    const v6 = sdp('v=0', 'o=- 1 1 IN IP6 ::1', 's=-', 'c=IN IP6 ::1', 't=0 0', 'm=audio 4000 RTP/AVP 0');
    expect(codeOf(() => rewriteSdp(v6, plan({ IP4: '192.0.2.1', IP6: null })))).toBe('sdp.unsupported_family');
    // Disabled, it needs no relay, and the c= still does not leak the peer's address.
    const out = rewriteSdp(v6.replace('m=audio 4000', 'm=audio 0'), plan({ IP4: '192.0.2.1', IP6: null }));
    expect(out).toContain('c=IN IP4 192.0.2.1');
    expect(out).toContain('m=audio 0 RTP/AVP 0');
  });

  it('an unknown network type on an active stream is refused; an m= without any c= is malformed', () => {
    expect(codeOf(() => rewriteSdp(sdp('v=0', 's=-', 'c=ATM NSAP 47.0005', 't=0 0', 'm=audio 4000 RTP/AVP 0'), plan()))).toBe('sdp.unsupported_family');
    expect(codeOf(() => rewriteSdp(sdp('v=0', 's=-', 't=0 0', 'm=audio 4000 RTP/AVP 0'), plan()))).toBe('sdp.malformed');
    expect(codeOf(() => rewriteSdp(sdp('v=0', 's=-', 'c=IN IP4', 't=0 0', 'm=audio 4000 RTP/AVP 0'), plan()))).toBe('sdp.malformed');
  });

  it('a=rtcp (RFC 3605) follows the relay RTCP port; the layered "/2" port count is dropped; LF-only input is accepted', () => {
    const text = ['v=0', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000/2 RTP/AVP 0', 'a=rtcp:4011 IN IP4 10.1.1.9', 'm=video 5000 RTP/AVP 96', 'a=rtcp:5011', ''].join('\n');
    const r = readSdp(text);
    expect(r.streams.map((s) => s.rtcpPort)).toEqual([4011, 5011]);
    const out = rewriteSdp(text, plan());
    expect(out).toBe(sdp('v=0', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 30000 RTP/AVP 0', 'a=rtcp:30001 IN IP4 192.0.2.1', 'm=video 30002 RTP/AVP 96', 'a=rtcp:30003'));
  });

  it('a TCP stream cannot go through a UDP relay: it is offered disabled (port 0, RFC 3264 §6)', () => {
    const out = rewriteSdp(sdp('v=0', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'm=message 7394 TCP/MSRP *'), plan());
    expect(out).toContain('m=audio 30000 RTP/AVP 0');
    expect(out).toContain('m=message 0 TCP/MSRP *');
  });

  it('the origin hook sees the rest of the rewritten SDP and sets the o= line', () => {
    const seen: string[] = [];
    const out = rewriteSdp(sdp('v=0', 'o=alice 5 9 IN IP4 10.1.1.1', 's=-', 'c=IN IP4 10.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0'), {
      ...plan(),
      origin: (o, rest) => {
        seen.push(rest);
        return { ...o, version: '10' };
      },
    });
    expect(out).toContain('o=alice 5 10 IN IP4 192.0.2.1');
    expect(seen[0]).not.toContain('o=');
    expect(seen[0]).toContain('m=audio 30000');
  });

  // ---- properties ---------------------------------------------------------------------

  const v4 = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));
  const v6 = fc.tuple(fc.integer({ min: 0x2000, max: 0xfdff }), fc.nat(0xffff), fc.nat(0xffff)).map(([a, b, c]) => `${a.toString(16)}:${b.toString(16)}::${c.toString(16)}`);
  const conn = fc.oneof(v4.map((a) => `c=IN IP4 ${a}`), v6.map((a) => `c=IN IP6 ${a}`));
  const stream = fc.record({
    media: fc.constantFrom('audio', 'video', 'image', 'application'),
    port: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
    proto: fc.constantFrom('RTP/AVP', 'RTP/SAVP', 'UDP/TLS/RTP/SAVPF', 'udptl', 'TCP/MSRP'),
    c: fc.option(conn, { nil: undefined }),
    rtcp: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  });
  const session = fc
    .record({ c: fc.option(conn, { nil: undefined }), streams: fc.array(stream, { minLength: 1, maxLength: 4 }), o6: fc.boolean() })
    // Every stream needs a connection address somewhere (RFC 4566 §5.7).
    .map((s) => ({ ...s, streams: s.c ? s.streams : s.streams.map((m) => ({ ...m, c: m.c ?? 'c=IN IP4 10.9.9.9' })) }));
  const render = (s: { c: string | undefined; streams: Array<{ media: string; port: number; proto: string; c: string | undefined; rtcp: number | undefined }>; o6: boolean }) =>
    sdp(
      'v=0',
      s.o6 ? 'o=- 1 1 IN IP6 fd00::1' : 'o=- 1 1 IN IP4 10.0.0.1',
      's=-',
      ...(s.c ? [s.c] : []),
      't=0 0',
      ...s.streams.flatMap((m) => [`m=${m.media} ${m.port} ${m.proto} 0`, ...(m.c ? [m.c] : []), ...(m.rtcp ? [`a=rtcp:${m.rtcp}`] : []), 'a=sendrecv']),
    );

  const RELAY_PORTS = new Set([40000, 40002, 40004, 40006]);
  const relayPlan = (addresses: RelayAddresses): RewritePlan => ({ addresses, port: (s) => 40000 + 2 * s.index });

  it('property: every c= names the relay address of its family; every non-zero m= port is a relay port; port 0 stays 0', () => {
    fc.assert(
      fc.property(session, (s) => {
        const text = render(s);
        const out = rewriteSdp(text, relayPlan(BOTH));
        const cs = out.match(/^c=.*$/gm) ?? [];
        expect(cs.length).toBe(text.match(/^c=.*$/gm)!.length);
        for (const c of cs) expect(['c=IN IP4 192.0.2.1', 'c=IN IP6 2001:db8::1']).toContain(c);
        // Family kept: line by line, IP4 stays IP4 and IP6 stays IP6.
        expect(cs.map((c) => c.slice(0, 9))).toEqual(text.match(/^c=.*$/gm)!.map((c) => c.slice(0, 9)));
        const inPorts = readSdp(text).streams.map((m) => m.port);
        const outStreams = readSdp(out).streams;
        expect(outStreams).toHaveLength(inPorts.length);
        outStreams.forEach((m, i) => {
          if (inPorts[i] === 0) expect(m.port).toBe(0);
          else if (m.port !== 0) expect(RELAY_PORTS.has(m.port)).toBe(true);
          if (m.rtcpPort !== undefined) expect(m.rtcpPort).toBe(m.port + 1);
        });
        expect(out).not.toMatch(/10\.0\.0\.1|fd00::1\b/);
      }),
      { numRuns: 300 },
    );
  });

  it('property: with one family missing, an SDP is either refused (an active stream needs it) or fully anchored on the other', () => {
    fc.assert(
      fc.property(session, fc.constantFrom<RelayAddresses>({ IP4: '192.0.2.1', IP6: null }, { IP4: null, IP6: '2001:db8::1' }), (s, addresses) => {
        const text = render(s);
        const missing = addresses.IP4 === null ? 'IP4' : 'IP6';
        const needs = readSdp(text).streams.some((m) => m.port !== 0 && !m.proto.startsWith('TCP') && m.family === missing);
        let out: string;
        try {
          out = rewriteSdp(text, relayPlan(addresses));
        } catch (e) {
          expect((e as SdpRewriteError).code).toBe('sdp.unsupported_family');
          expect(needs).toBe(true);
          return;
        }
        expect(needs).toBe(false);
        const only = addresses.IP4 ?? addresses.IP6!;
        for (const c of out.match(/^c=.*$/gm) ?? []) expect(c).toBe(`c=IN ${missing === 'IP4' ? 'IP6' : 'IP4'} ${only}`);
      }),
      { numRuns: 300 },
    );
  });
});
