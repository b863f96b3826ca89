import { describe, expect, it } from 'vitest';
import { DigestServer } from '../../src/digest/index.js';
import { createResponse, parseNameAddr, SipError } from '../../src/parser/index.js';
import { Registration } from '../../src/dialog/index.js';
import { driveReg, ok, regHarness, type Answer } from './registration-harness.js';

const SECRET = 'a-test-secret-of-sufficient-size';

function digestAnswer(server: DigestServer, then: Answer = ok(undefined, 3600)): Answer {
  return (req, tx) => {
    void server.verify(req).then((r) => {
      if (r.kind === 'ok') then(req, tx);
      else tx.respond(r.response);
    });
  };
}

describe('Registration: REGISTER (RFC 3261 §10.2)', () => {
  it('sends REGISTER to the registrar URI with To/From the AOR, the UA Contact and Expires, and resolves with the grant', async () => {
    const h = regHarness({ reg: { expires: 600 }, answer: ok(300, 600) });
    const info = await driveReg(h, h.reg.register());
    expect(h.requests).toHaveLength(1);
    const r = h.requests[0]!;
    expect(r.method).toBe('REGISTER');
    expect(r.uri).toBe('sip:10.0.0.9');
    expect(r.to.uri.toString()).toBe('sip:alice@example.test');
    expect(r.to.tag).toBeUndefined();
    expect(r.from.uri.toString()).toBe('sip:alice@example.test');
    expect(r.from.tag).toBeDefined();
    expect(r.getAll('contact')).toEqual(['<sip:alice@10.0.0.1:5060>']);
    expect(r.get('expires')).toBe('600');
    expect(r.has('supported')).toBe(false);
    expect(info.expires).toBe(300);
    expect(info.contacts).toEqual(['<sip:alice@10.0.0.1:5060>;expires=300']);
    expect(h.reg.state).toBe('registered');
    expect(h.registered).toHaveLength(1);
  });

  it('refreshes at half the granted time: the Contact expires param wins over the Expires header (§10.2.4)', async () => {
    const h = regHarness({ answer: ok(60, 120) });
    await driveReg(h, h.reg.register());
    const at = h.clock.now();
    await h.run(29_990);
    expect(h.registerTimes()).toHaveLength(1);
    await h.run(100);
    const times = h.registerTimes();
    expect(times).toHaveLength(2);
    expect(times[1]! - at).toBe(30_000);
    expect(h.registered).toHaveLength(2);
  });

  it('keeps the Call-ID and From tag and raises CSeq by one on every REGISTER (§10.2.4)', async () => {
    const h = regHarness({ answer: ok(10) });
    await driveReg(h, h.reg.register());
    await h.run(16_000);
    expect(h.requests.length).toBe(4);
    expect(new Set(h.requests.map((r) => r.callId)).size).toBe(1);
    expect(h.requests[0]!.callId).toBe(h.reg.callId);
    expect(new Set(h.requests.map((r) => r.from.tag)).size).toBe(1);
    expect(h.requests.map((r) => r.cseq.seq)).toEqual([1, 2, 3, 4]);
    expect(new Set(h.requests.map((r) => r.topVia!.branch)).size).toBe(4);
  });

  it('a registrar granting less than asked: refresh at half of what it granted (Expires header only)', async () => {
    const h = regHarness({ reg: { expires: 3600 }, answer: ok(undefined, 100) });
    const info = await driveReg(h, h.reg.register());
    expect(info.expires).toBe(100);
    const at = h.clock.now();
    await h.run(50_100);
    expect(h.registerTimes()[1]! - at).toBe(50_000);
    // The request still asks for what the user wanted; only the refresh timing follows the grant.
    expect(h.requests[1]!.get('expires')).toBe('3600');
  });

  it('takes the expires of its own Contact among several bindings', async () => {
    const h = regHarness({
      answer: (req, tx) =>
        tx.respond(
          createResponse(req, 200, {
            headers: { Contact: ['<sip:other@10.0.0.7>;expires=900', '<sip:alice@10.0.0.1>;expires=40, <sip:x@10.0.0.8>;expires=5'], Expires: '3600' },
          }),
        ),
    });
    const info = await driveReg(h, h.reg.register());
    // sip:alice@10.0.0.1 is ours: no port is the default port (liberal matching).
    expect(info.expires).toBe(40);
    expect(info.contacts).toHaveLength(3);
  });
});

describe('Registration: digest authentication', () => {
  it('401 → Authorization: same Call-ID, next CSeq; the refresh is signed before it is asked (nc 2)', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'pw' } } });
    const server = new DigestServer({ now: () => h.clock.now(), secret: SECRET, realm: 'example.test', proxy: false, lookup: (u) => (u === 'alice' ? { password: 'pw' } : undefined) });
    h.answer = digestAnswer(server, ok(20));
    const info = await driveReg(h, h.reg.register());
    expect(info.expires).toBe(20);
    expect(h.sent.filter(([, l]) => l.startsWith('SIP/2.0 401'))).toHaveLength(1);
    expect(h.requests).toHaveLength(2);
    expect(h.requests[0]!.has('authorization')).toBe(false);
    expect(h.requests[1]!.get('authorization')).toMatch(/^Digest /);
    expect(h.requests[1]!.callId).toBe(h.requests[0]!.callId);
    expect(h.requests[1]!.cseq.seq).toBe(2);
    await h.run(10_100);
    // The refresh carries credentials for the same nonce, the next nonce-count, and is accepted at once.
    expect(h.requests).toHaveLength(3);
    expect(h.requests[2]!.cseq.seq).toBe(3);
    expect(h.requests[2]!.get('authorization')).toMatch(/nc=00000002/);
    expect(h.sent.filter(([, l]) => l.startsWith('SIP/2.0 401'))).toHaveLength(1);
    expect(h.registered).toHaveLength(2);
  });

  it('407 → Proxy-Authorization', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'pw' } } });
    const server = new DigestServer({ now: () => h.clock.now(), secret: SECRET, realm: 'proxy.test', proxy: true, lookup: () => ({ password: 'pw' }) });
    h.answer = digestAnswer(server);
    await driveReg(h, h.reg.register());
    expect(h.sent.filter(([, l]) => l.startsWith('SIP/2.0 407'))).toHaveLength(1);
    expect(h.requests[1]!.get('proxy-authorization')).toMatch(/^Digest .*realm="proxy.test"/);
    expect(h.requests[1]!.has('authorization')).toBe(false);
    expect(h.reg.state).toBe('registered');
  });

  it('a stale=true challenge is answered again without failing', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'pw' } } });
    let n = 0;
    h.answer = (req, tx) => {
      n++;
      if (n <= 2) {
        tx.respond(
          createResponse(req, 401, {
            headers: { 'WWW-Authenticate': `Digest realm="example.test", nonce="nonce${n}", algorithm=MD5, qop="auth"${n === 2 ? ', stale=true' : ''}` },
          }),
        );
      } else ok(undefined, 60)(req, tx);
    };
    await driveReg(h, h.reg.register());
    expect(h.failed).toHaveLength(0);
    expect(h.requests).toHaveLength(3);
    expect(h.requests[2]!.get('authorization')).toMatch(/nonce="nonce2"/);
    expect(h.requests.map((r) => r.cseq.seq)).toEqual([1, 2, 3]);
  });

  it('a wrong password: the second challenge fails the attempt (cause auth) and register() rejects', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'wrong' }, retry: { baseMs: 1000, maxMs: 60_000 } } });
    h.answer = digestAnswer(new DigestServer({ now: () => h.clock.now(), secret: SECRET, realm: 'example.test', proxy: false, lookup: () => ({ password: 'right' }) }));
    const err = await driveReg(h, h.reg.register()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SipError);
    expect((err as SipError).code).toBe('REGISTRATION_FAILED');
    expect(h.failed).toHaveLength(1);
    expect(h.failed[0]!.cause).toBe('auth');
    expect(h.failed[0]!.status).toBe(401);
    expect(h.requests).toHaveLength(2);
    expect(h.reg.state).toBe('retrying');
  });

  it('no credentials configured: a 401 fails with cause auth', async () => {
    const h = regHarness({ answer: (req, tx) => tx.respond(createResponse(req, 401, { headers: { 'WWW-Authenticate': 'Digest realm="x", nonce="n"' } })) });
    await expect(driveReg(h, h.reg.register())).rejects.toMatchObject({ code: 'REGISTRATION_FAILED' });
    expect(h.failed[0]).toMatchObject({ cause: 'auth', status: 401 });
  });

  it('403 after authenticating is a failure that is retried after the back-off', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'pw' }, retry: { baseMs: 1000, maxMs: 60_000 } } });
    const server = new DigestServer({ now: () => h.clock.now(), secret: SECRET, realm: 'example.test', proxy: false, lookup: () => ({ password: 'pw' }) });
    h.answer = digestAnswer(server, (req, tx) => tx.respond(createResponse(req, 403)));
    await driveReg(h, h.reg.register()).catch(() => undefined);
    expect(h.failed[0]).toMatchObject({ cause: 'rejected', status: 403, retryInMs: 1500 });
    const n = h.requests.length;
    h.answer = digestAnswer(server, ok(undefined, 60));
    await h.run(1600);
    expect(h.requests.length).toBeGreaterThan(n);
    expect(h.reg.state).toBe('registered');
  });
});

describe('Registration: failures and back-off (RFC 5626 §4.5)', () => {
  it('grows exponentially, capped, with jitter from the injected random source', async () => {
    const draws = [0, 1 - 1e-9, 0, 0, 0.5, 0];
    let i = 0;
    const h = regHarness({
      answer: (req, tx) => tx.respond(createResponse(req, 500)),
      reg: { retry: { baseMs: 1000, maxMs: 10_000 }, random: () => draws[i++ % draws.length]! },
    });
    void h.reg.register().catch(() => undefined);
    await h.run(60_000, 50);
    const waits = h.failed.slice(0, 6).map((f) => f.retryInMs);
    // min(10 s, 1 s·2^n) with n = 1, 2, … failures, then 50–100 % of it.
    expect(waits).toEqual([1000, 4000, 4000, 5000, 7500, 5000]);
    const t = h.registerTimes();
    for (let k = 0; k < 5; k++) expect(t[k + 1]! - t[k]!).toBeGreaterThanOrEqual(waits[k]!);
  });

  it('recovers when the registrar comes back: the failure count resets', async () => {
    const h = regHarness({ answer: (req, tx) => tx.respond(createResponse(req, 503)), reg: { retry: { baseMs: 1000, maxMs: 100_000 } } });
    void h.reg.register().catch(() => undefined);
    await h.run(9000, 50);
    expect(h.failed.map((f) => f.retryInMs)).toEqual([1500, 3000, 6000]);
    h.answer = ok(undefined, 20);
    await h.run(4000, 50);
    expect(h.reg.state).toBe('registered');
    const before = h.failed.length;
    h.answer = (req, tx) => tx.respond(createResponse(req, 500));
    await h.run(10_100, 50);
    // The refresh failed: the first failure since the success waits the first step again.
    expect(h.failed[before]!.retryInMs).toBe(1500);
  });

  it('the binding lapses when refreshes keep failing until its granted time is over', async () => {
    const h = regHarness({ answer: ok(10), reg: { retry: { baseMs: 1000, maxMs: 2000 } } });
    await driveReg(h, h.reg.register());
    const at = h.clock.now();
    h.answer = (req, tx) => tx.respond(createResponse(req, 500));
    await h.run(9900 - (h.clock.now() - at), 50);
    expect(h.failed.length).toBeGreaterThan(0);
    expect(h.reg.binding?.expires).toBe(10);
    await h.run(200, 50);
    expect(h.reg.binding).toBeUndefined();
    expect(h.reg.state).toBe('retrying');
  });

  it('honours Retry-After on a 503 as the least wait', async () => {
    const h = regHarness({
      answer: (req, tx) => tx.respond(createResponse(req, 503, { headers: { 'Retry-After': '120' } })),
      reg: { retry: { baseMs: 1000, maxMs: 1_000_000 } },
    });
    void h.reg.register().catch(() => undefined);
    await h.run(100);
    expect(h.failed[0]!.retryInMs).toBe(120_000);
  });

  it('a registrar that never answers: cause timeout (Timer F) and a retry', async () => {
    const h = regHarness({ answer: () => undefined, reg: { retry: { baseMs: 1000, maxMs: 10_000 } } });
    void h.reg.register().catch(() => undefined);
    await h.run(33_000, 100);
    expect(h.failed).toHaveLength(1);
    expect(h.failed[0]).toMatchObject({ cause: 'timeout', status: 408, retryInMs: 1500 });
    await h.run(1600, 100);
    expect(h.reg.state).toBe('registering');
  });

  it('a network error (connection refused on a stream): cause transport', async () => {
    const h = regHarness({ reliable: true, reg: { registrar: 'sip:10.0.0.99;transport=tcp', retry: { baseMs: 1000, maxMs: 10_000 } } });
    await expect(driveReg(h, h.reg.register())).rejects.toMatchObject({ code: 'REGISTRATION_FAILED' });
    expect(h.failed[0]).toMatchObject({ cause: 'transport', status: 503 });
  });

  it('register() while retrying goes at once, and resolves when that attempt succeeds', async () => {
    const h = regHarness({ answer: (req, tx) => tx.respond(createResponse(req, 500)), reg: { retry: { baseMs: 60_000, maxMs: 600_000 } } });
    await driveReg(h, h.reg.register()).catch(() => undefined);
    h.answer = ok(undefined, 60);
    const info = await driveReg(h, h.reg.register(), 1000);
    expect(info.expires).toBe(60);
    expect(h.requests).toHaveLength(2);
  });
});

describe('Registration: 423 Interval Too Brief (§10.2.8)', () => {
  it('asks again with the Min-Expires, same Call-ID and next CSeq, and keeps asking for it', async () => {
    const h = regHarness({
      reg: { expires: 30 },
      answer: (req, tx) => {
        if (Number(req.get('expires')) < 300) tx.respond(createResponse(req, 423, { headers: { 'Min-Expires': '300' } }));
        else ok(undefined, 300)(req, tx);
      },
    });
    const info = await driveReg(h, h.reg.register());
    expect(info.expires).toBe(300);
    expect(h.requests.map((r) => r.get('expires'))).toEqual(['30', '300']);
    expect(h.requests.map((r) => r.cseq.seq)).toEqual([1, 2]);
    expect(h.requests[1]!.callId).toBe(h.requests[0]!.callId);
    expect(h.reg.expires).toBe(300);
    expect(h.failed).toHaveLength(0);
    await h.run(150_100, 100);
    expect(h.requests[2]!.get('expires')).toBe('300');
  });

  it('a 423 without a larger Min-Expires fails the attempt (cause interval) instead of looping', async () => {
    const h = regHarness({ reg: { expires: 600 }, answer: (req, tx) => tx.respond(createResponse(req, 423, { headers: { 'Min-Expires': '600' } })) });
    await driveReg(h, h.reg.register()).catch(() => undefined);
    expect(h.requests).toHaveLength(1);
    expect(h.failed[0]).toMatchObject({ cause: 'interval', status: 423 });
  });
});

describe('Registration: close() unregisters (§10.2.2)', () => {
  it('sends Expires: 0 with the Contact at expires=0, emits unregistered, and leaves no timer', async () => {
    const h = regHarness({ answer: ok(undefined, 60) });
    await driveReg(h, h.reg.register());
    await driveReg(h, h.reg.close());
    const last = h.requests.at(-1)!;
    expect(h.requests).toHaveLength(2);
    expect(last.get('expires')).toBe('0');
    expect(last.getAll('contact')).toEqual(['<sip:alice@10.0.0.1:5060>;expires=0']);
    expect(last.cseq.seq).toBe(2);
    expect(last.callId).toBe(h.requests[0]!.callId);
    expect(h.unregistered).toBe(1);
    expect(h.reg.state).toBe('closed');
    expect(h.reg.binding).toBeUndefined();
    await h.run(200_000, 1000);
    expect(h.requests).toHaveLength(2);
    expect(h.ua.layer.stats.transactions).toBe(0);
    await expect(h.reg.register()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('answers a challenge to the unregister', async () => {
    const h = regHarness({ reg: { auth: { username: 'alice', password: 'pw' } } });
    const server = new DigestServer({ now: () => h.clock.now(), secret: SECRET, realm: 'example.test', proxy: false, lookup: () => ({ password: 'pw' }), nonceTtlMs: 5000 });
    h.answer = digestAnswer(server, ok(undefined, 3600));
    await driveReg(h, h.reg.register());
    // The nonce goes stale before close: the signed unregister is challenged and answered.
    await h.run(6000, 100);
    await driveReg(h, h.reg.close());
    const regs = h.requests.filter((r) => r.get('expires') === '0');
    expect(regs.length).toBeGreaterThanOrEqual(2);
    expect(h.unregistered).toBe(1);
  });

  it('close() during the back-off cancels the retry; close() before any REGISTER sends nothing', async () => {
    const h = regHarness({ answer: (req, tx) => tx.respond(createResponse(req, 500)), reg: { retry: { baseMs: 1000, maxMs: 10_000 } } });
    await driveReg(h, h.reg.register()).catch(() => undefined);
    h.answer = ok(undefined, 60);
    await driveReg(h, h.reg.close());
    const n = h.requests.length;
    expect(h.requests.at(-1)!.get('expires')).toBe('0');
    await h.run(30_000, 500);
    expect(h.requests).toHaveLength(n);

    const idle = regHarness();
    await driveReg(idle, idle.reg.close());
    expect(idle.requests).toHaveLength(0);
    expect(idle.unregistered).toBe(0);
  });

  it('close() while a REGISTER is in flight waits for it, then unregisters', async () => {
    const h = regHarness({ answer: ok(undefined, 60) });
    const p = h.reg.register();
    const closed = h.reg.close();
    await driveReg(h, closed);
    await expect(p).resolves.toMatchObject({ expires: 60 });
    expect(h.requests.map((r) => r.get('expires'))).toEqual(['3600', '0']);
    expect(h.unregistered).toBe(1);
  });
});

describe('Registration: options', () => {
  it('refuses what it cannot use with BAD_OPTION', () => {
    const h = regHarness();
    expect(() => new Registration(h.ua, { registrar: 'not a uri', aor: 'sip:a@b' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new Registration(h.ua, { registrar: 'sip:b', aor: 'sip:a@b', expires: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new Registration(h.ua, { registrar: 'sip:b', aor: 'sip:a@b', outbound: { instanceId: 'x"y' } })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new Registration(h.ua, { registrar: 'sip:b', aor: 'sip:a@b', keepAlive: { intervalMs: 0 } })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new Registration(h.ua, { registrar: 'sip:b', aor: 'sip:a@b', retry: { baseMs: -1 } })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });

  it('uses the Contact it is given', async () => {
    const h = regHarness({ reg: { contact: 'sip:me@10.0.0.1:5060;transport=udp' }, answer: ok(77) });
    const info = await driveReg(h, h.reg.register());
    expect(parseNameAddr(h.requests[0]!.get('contact')!).uri.toString()).toBe('sip:me@10.0.0.1:5060;transport=udp');
    expect(info.expires).toBe(77);
  });
});
