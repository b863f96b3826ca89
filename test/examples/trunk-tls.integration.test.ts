import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig, type TrunkConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { TlsTransport, UdpTransport, type TransportError } from '../../src/transport/index.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../support/tls-certs.js';

// The trunk's TLS listener and outgoing TLS over real sockets on 127.0.0.1 (issue #17), with
// certificates from a test CA made for the run.
if (!hasOpenssl && process.env.CI) throw new Error('openssl is not installed: .ci/run installs it');

const DOMAIN = 'demo.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

let pki: TestPki;
/** A certificate for the address 127.0.0.1 (SAN IP:127.0.0.1), signed by the test CA: what the trunk verifies an IP target against. */
let ipCert: { cert: string; key: string };
beforeAll(() => {
  if (!hasOpenssl) return;
  pki = makeTestPki();
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: pki.dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  writeFileSync(join(pki.dir, 'ip.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ip.key', '-out', 'ip.csr', '-subj', '/CN=127.0.0.1']);
  run(['x509', '-req', '-in', 'ip.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'ip.crt', '-days', '2', '-extfile', 'ip.ext']);
  ipCert = { cert: readFileSync(join(pki.dir, 'ip.crt'), 'utf8'), key: readFileSync(join(pki.dir, 'ip.key'), 'utf8') };
});
afterAll(() => pki?.remove());

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** A destination that answers every call, over `transport`. */
async function destination(transport: UdpTransport | TlsTransport) {
  const calls: IncomingCall[] = [];
  const ua = new UserAgent({ transports: [transport], contactUser: 'dest', onInvite: (c) => void (calls.push(c), c.answer({ body: SDP })) });
  stops.push(() => ua.close());
  return { calls, port: transport.local.port };
}

async function trunkWith(pair: { certFile: string; keyFile: string }, target: string, extra: Record<string, unknown> = {}, lines: string[] = []): Promise<TrunkServer> {
  const config: TrunkConfig = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tls', host: '127.0.0.1', port: 0, cert: pair.certFile, key: pair.keyFile }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'trunk-tls-secret-0123456789abcdef', algorithms: ['SHA-256'] },
    domains: { [DOMAIN]: { extensions: { '1000': { password: 'pw-1000' } }, routes: [{ prefix: '', targets: [target] }] } },
    cdr: { path: null },
    log: { level: 'info' },
    ...extra,
  });
  const trunk = await startTrunk(config, { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) });
  stops.push(() => trunk.stop('hangup'));
  return trunk;
}

/** A caller over TLS trusting the test CA, checking the trunk's certificate for the SIP domain sip.test (RFC 5922). */
async function tlsCaller() {
  const t = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, serverNameFor: () => 'sip.test' });
  const errors: TransportError[] = [];
  const send = t.send.bind(t);
  t.send = (bytes, to) => send(bytes, to).catch((e: TransportError) => {
    errors.push(e);
    throw e;
  });
  const ua = new UserAgent({ transports: [t], contactUser: 'caller' });
  stops.push(() => ua.close());
  return { ua, errors };
}

function dial(ua: UserAgent, trunk: TrunkServer): OutgoingCall {
  const tls = trunk.sip.find((s) => s.transport === 'tls')!;
  return ua.invite(`sip:15551234567@${DOMAIN}`, {
    destination: { address: '127.0.0.1', port: tls.port, transport: 'tls' },
    from: `<sip:1000@${DOMAIN}>`,
    body: SDP,
    auth: { username: '1000', password: 'pw-1000' },
  });
}

function outcome(call: OutgoingCall): Promise<{ answered: true } | { answered: false; response: SipResponse }> {
  return new Promise((resolve) => {
    call.on('answer', () => resolve({ answered: true }));
    call.on('failure', (response) => resolve({ answered: false, response }));
  });
}

describe.skipIf(!hasOpenssl)('trunk: TLS listener', () => {
  it('a caller over TLS is challenged (SHA-256), authenticates as 1000 and is bridged to the destination; the record says tls', async () => {
    const dest = await destination(await UdpTransport.bind({ host: '127.0.0.1' }));
    const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${dest.port}`);
    expect(trunk.sip.map((s) => s.transport)).toEqual(['udp', 'tls']);
    const records: CallRecord[] = [];
    trunk.b2bua.on('call', (r) => records.push(r));
    const { ua, errors } = await tlsCaller();
    const call = dial(ua, trunk);
    expect(await outcome(call)).toEqual({ answered: true });
    expect(call.invite.get('proxy-authorization')).toContain('algorithm=SHA-256');
    expect(errors).toEqual([]);
    expect(dest.calls).toHaveLength(1);
    expect(dest.calls[0]!.invite.uri).toBe(`sip:15551234567@127.0.0.1:${dest.port}`);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ identity: '1000', source: { transport: 'tls' }, tags: { domain: DOMAIN, auth: 'digest' } });
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;
  });

  it('a trunk presenting a certificate for another host is refused by the caller: TLS_IDENTITY, nothing reaches the trunk', async () => {
    const dest = await destination(await UdpTransport.bind({ host: '127.0.0.1' }));
    const trunk = await trunkWith(pki.wrongHost, `sip:127.0.0.1:${dest.port}`);
    let received = 0;
    trunk.b2bua.on('call', () => received++);
    const { ua, errors } = await tlsCaller();
    const r = await outcome(dial(ua, trunk));
    expect(r.answered).toBe(false);
    expect(!r.answered && r.response.status).toBe(503);
    expect(errors.map((e) => e.code)).toEqual(['TLS_IDENTITY']);
    expect(errors[0]!.message).toContain('other.test');
    expect(received).toBe(0);
    expect(trunk.b2bua.ua.layer.stats.requestsReceived).toBe(0);
    expect(dest.calls).toHaveLength(0);
  });
});

describe.skipIf(!hasOpenssl)('trunk: outgoing TLS (tls.ca, tls.verify)', () => {
  const tlsDestination = async (pair: { cert: string; key: string }) => destination(await TlsTransport.listen({ host: '127.0.0.1', cert: pair.cert, key: pair.key }));

  it('with the CA in tls.ca, a destination over TLS whose certificate is for its address is reached', async () => {
    const dest = await tlsDestination(ipCert);
    const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${dest.port};transport=tls`, { tls: { ca: pki.caFile } });
    const { ua } = await tlsCaller();
    const call = dial(ua, trunk);
    expect(await outcome(call)).toEqual({ answered: true });
    expect(dest.calls).toHaveLength(1);
    await call.hangup();
  });

  it('without the CA (Node\'s roots), or with a certificate for another host, the destination is not reached', async () => {
    for (const [pair, tls] of [[ipCert, {}], [pki.wrongHost, { tls: { ca: pki.caFile } }]] as const) {
      const dest = await tlsDestination(pair);
      const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${dest.port};transport=tls`, tls);
      const { ua } = await tlsCaller();
      const r = await outcome(dial(ua, trunk));
      expect(r.answered).toBe(false);
      expect(!r.answered && r.response.status).toBeGreaterThanOrEqual(500);
      expect(dest.calls).toHaveLength(0);
    }
  });

  it('a destination whose certificate is for another host: the call record, the API and the CDR line say TLS_IDENTITY (and a CA not trusted: TLS_UNTRUSTED)', async () => {
    for (const [pair, tls, code] of [
      [pki.wrongHost, { tls: { ca: pki.caFile } }, 'TLS_IDENTITY'],
      [ipCert, {}, 'TLS_UNTRUSTED'],
    ] as const) {
      const dest = await tlsDestination(pair);
      const cdrPath = join(pki.dir, `cdr-${code}.jsonl`);
      const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${dest.port};transport=tls`, { ...tls, cdr: { path: cdrPath } });
      const ended = new Promise<CallRecord>((resolve) => trunk.b2bua.once('end', resolve));
      const { ua } = await tlsCaller();
      const r = await outcome(dial(ua, trunk));
      expect(!r.answered && r.response.status).toBe(503);
      const record = await ended;
      expect(record.hangup).toMatchObject({ by: 'system', status: 503, targetError: code });
      const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls/${encodeURIComponent(record.id)}`, { headers: { authorization: 'Bearer tok' } });
      const view = (await res.json()) as Record<string, unknown>;
      expect(view).toMatchObject({ status: 'hangup', hangup_by: 'system', hangup_code: 503, target_error: code });
      // Additive: every field the API had before is still there, in the same order, target_error last.
      expect(Object.keys(view).slice(-2)).toEqual(['charge', 'target_error']);
      await trunk.stop('hangup');
      const line = JSON.parse(readFileSync(cdrPath, 'utf8').trim()) as Record<string, unknown>;
      expect(line).toMatchObject({ id: record.id, target_error: code });
      expect(dest.calls).toHaveLength(0);
    }
  });

  it('a destination that answers a failure itself: no target_error (the callee said why)', async () => {
    const t = await UdpTransport.bind({ host: '127.0.0.1' });
    const ua = new UserAgent({ transports: [t], contactUser: 'dest', onInvite: (c) => void c.reject(486) });
    stops.push(() => ua.close());
    const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${t.local.port}`);
    const ended = new Promise<CallRecord>((resolve) => trunk.b2bua.once('end', resolve));
    const { ua: caller } = await tlsCaller();
    const r = await outcome(dial(caller, trunk));
    expect(!r.answered && r.response.status).toBe(486);
    const record = await ended;
    expect(record.hangup).toMatchObject({ by: 'callee', status: 486 });
    expect(record.hangup!.targetError).toBeUndefined();
  });

  it('verify: false reaches a destination whatever its certificate, and says so in a warning at start', async () => {
    const dest = await tlsDestination(pki.wrongHost);
    const lines: string[] = [];
    const trunk = await trunkWith(pki.server, `sip:127.0.0.1:${dest.port};transport=tls`, { tls: { verify: false } }, lines);
    expect(lines.filter((l) => l.startsWith('warn tls.verify_off'))).toHaveLength(1);
    const { ua } = await tlsCaller();
    const call = dial(ua, trunk);
    expect(await outcome(call)).toEqual({ answered: true });
    expect(dest.calls).toHaveLength(1);
    await call.hangup();
  });
});
