import { describe, expect, it } from 'vitest';
import { createResponse, parseNameAddr } from '../../src/parser/index.js';
import { ok, regHarness } from './registration-harness.js';
import { driveReg } from './registration-harness.js';

const UUID = '8f5b1f2e-4d4b-4a9e-9a59-2d7c3c0d1b6a';
const isPing = (b: Uint8Array) => Buffer.from(b).toString('latin1') === '\r\n\r\n';

describe('Registration: RFC 5626 outbound', () => {
  it('adds +sip.instance and reg-id to the Contact and Supported: outbound, path', async () => {
    const h = regHarness({ reg: { outbound: { instanceId: UUID, regId: 2 } } });
    await driveReg(h, h.reg.register());
    const r = h.requests[0]!;
    expect(r.getAll('supported')).toEqual(['outbound', 'path']);
    const c = parseNameAddr(r.get('contact')!);
    expect(c.uri.toString()).toBe('sip:alice@10.0.0.1:5060');
    expect(c.params.get('+sip.instance')).toBe(`<urn:uuid:${UUID}>`);
    expect(c.params.get('reg-id')).toBe('2');
    // Removing the binding names the same instance and reg-id (§4.2.1 / §10.2.2).
    await driveReg(h, h.reg.close());
    const u = parseNameAddr(h.requests.at(-1)!.get('contact')!);
    expect(u.params.get('+sip.instance')).toBe(`<urn:uuid:${UUID}>`);
    expect(u.params.get('expires')).toBe('0');
  });

  it('finds its binding by instance and reg-id when the registrar rewrote the Contact URI', async () => {
    const h = regHarness({
      reg: { outbound: { instanceId: `urn:uuid:${UUID}` } },
      answer: (req, tx) =>
        tx.respond(
          createResponse(req, 200, {
            headers: {
              Contact: [`<sip:alice@192.0.2.1:40000>;expires=500;+sip.instance="<urn:uuid:${UUID}>";reg-id=1`, '<sip:alice@10.0.0.1:5060>;expires=30'],
              Expires: '3600',
            },
          }),
        ),
    });
    const info = await driveReg(h, h.reg.register());
    expect(info.expires).toBe(500);
  });

  it('sends CRLF CRLF keep-alives on a stream at 80–100 % of Flow-Timer when the registrar requires outbound', async () => {
    const h = regHarness({
      reliable: true,
      reg: { outbound: { instanceId: UUID }, random: () => 0 },
      answer: ok(undefined, 3600, { Require: 'outbound', 'Flow-Timer': '30' }),
    });
    await driveReg(h, h.reg.register());
    const at = h.clock.now();
    await h.run(60_000, 100);
    const pings = h.sent.filter(([, , b]) => isPing(b)).map(([t]) => t - at);
    // random() = 0 → 80 % of 30 s, each time.
    expect(pings).toEqual([24_000, 48_000]);
    await driveReg(h, h.reg.close());
    const n = h.sent.filter(([, , b]) => isPing(b)).length;
    await h.run(60_000, 1000);
    expect(h.sent.filter(([, , b]) => isPing(b)).length).toBe(n);
  });

  it('without Flow-Timer, a stream keep-alive goes every 95–120 s', async () => {
    const h = regHarness({ reliable: true, reg: { outbound: { instanceId: UUID }, random: () => 1 - 1e-9 }, answer: ok(undefined, 3600, { Require: 'outbound' }) });
    await driveReg(h, h.reg.register());
    const at = h.clock.now();
    await h.run(121_000, 500);
    expect(h.sent.filter(([, , b]) => isPing(b)).map(([t]) => t - at)).toEqual([120_000]);
  });

  it('no keep-alives by default when the registrar does not say Require: outbound, nor over UDP', async () => {
    const tcp = regHarness({ reliable: true, reg: { outbound: { instanceId: UUID } } });
    await driveReg(tcp, tcp.reg.register());
    await tcp.run(200_000, 1000);
    expect(tcp.sent.filter(([, , b]) => isPing(b))).toHaveLength(0);
    const udp = regHarness({ reg: { outbound: { instanceId: UUID } }, answer: ok(undefined, 3600, { Require: 'outbound', 'Flow-Timer': '30' }) });
    await driveReg(udp, udp.reg.register());
    await udp.run(200_000, 1000);
    expect(udp.sent.filter(([, , b]) => isPing(b))).toHaveLength(0);
  });

  it('keepAlive with an interval forces CRLF CRLF keep-alives over UDP (a NAT keep-alive, not RFC 5626)', async () => {
    const h = regHarness({ reg: { keepAlive: { intervalMs: 15_000 } } });
    await driveReg(h, h.reg.register());
    const at = h.clock.now();
    await h.run(46_000, 500);
    const pings = h.sent.filter(([, , b]) => isPing(b));
    expect(pings.map(([t]) => t - at)).toEqual([15_000, 30_000, 45_000]);
    expect(pings[0]![1]).toBe('');
  });

  it('a keep-alive that cannot be sent (the flow failed) registers again at once', async () => {
    const h = regHarness({ reliable: true, reg: { outbound: { instanceId: UUID }, random: () => 0 }, answer: ok(undefined, 3600, { Require: 'outbound', 'Flow-Timer': '10' }) });
    await driveReg(h, h.reg.register());
    // The registrar's end goes away: the stream's next send is refused.
    await h.registrar.layer.transports[0]!.close();
    await h.run(8100, 100);
    expect(h.failed[0]).toMatchObject({ cause: 'transport', retryInMs: 0 });
    // The re-REGISTER was tried at once (and refused the same way, so it is now backing off).
    expect(h.failed[1]).toMatchObject({ cause: 'transport', status: 503 });
    expect(h.failed).toHaveLength(2);
    expect(h.reg.state).toBe('retrying');
  });
});
