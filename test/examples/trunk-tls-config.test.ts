import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig } from '../../examples/trunk-server/config.js';
import { createRegistrations, REGISTRATION_AUTH } from '../../examples/trunk-server/registrations.js';
import { createRequest } from '../../src/parser/index.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import type { MessageSource } from '../../src/transaction/index.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../support/tls-certs.js';

// The trunk's network configuration (issue #17): TLS listeners, outgoing TLS, registrations.

let pki: TestPki;
let dir: string;
beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'trunk-tls-config-'));
  writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
});
afterAll(() => {
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function errorOf(input: unknown, baseDir?: string): { field: string; message: string } {
  try {
    validateConfig(input, { baseDir });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return { field: (e as ConfigError).field, message: (e as ConfigError).message };
  }
  throw new Error('accepted');
}

const tlsListen = (extra: Record<string, unknown> = {}) => ({ transport: 'tls', host: '127.0.0.1', port: 5061, cert: pki.server.certFile, key: pki.server.keyFile, ...extra });
const withTls = (extra: Record<string, unknown> = {}) => ({ sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 5060 }, tlsListen()] }, ...extra });
const DOMAINS = { 'pbx.trunk.sipkit.test': { extensions: {}, routes: [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }] } };

describe.skipIf(!hasOpenssl)('trunk config: TLS listener', () => {
  it('accepts a tls listener with its certificate and key (absolute paths kept), and resolves relative ones against the config file', () => {
    const c = validateConfig(withTls());
    expect(c.sip.listen[1]).toEqual({ transport: 'tls', host: '127.0.0.1', port: 5061, cert: pki.server.certFile, key: pki.server.keyFile });
    // loadConfig: paths relative to the file's own directory, not the working directory.
    const file = join(pki.dir, 'trunk.json');
    writeFileSync(file, JSON.stringify({ sip: { listen: [{ transport: 'tls', host: '127.0.0.1', port: 0, cert: 'server.crt', key: 'server.key' }] }, tls: { ca: 'ca.crt' } }));
    const loaded = loadConfig(file);
    expect(loaded.sip.listen[0]).toMatchObject({ cert: pki.server.certFile, key: pki.server.keyFile });
    expect(loaded.tls).toEqual({ ca: pki.caFile, verify: true });
  });

  it.each([
    ['no cert', () => ({ sip: { listen: [tlsListen({ cert: undefined })] } }), 'sip.listen[0].cert', /non-empty string/],
    ['no key', () => ({ sip: { listen: [tlsListen({ key: undefined })] } }), 'sip.listen[0].key', /non-empty string/],
    ['a missing cert file', () => ({ sip: { listen: [tlsListen({ cert: join(dir, 'nope.pem') })] } }), 'sip.listen[0].cert', /cannot read .*nope\.pem: ENOENT/],
    ['a cert file without a certificate', () => ({ sip: { listen: [tlsListen({ cert: join(dir, 'junk.pem') })] } }), 'sip.listen[0].cert', /no PEM certificate/],
    ['a key file without a key', () => ({ sip: { listen: [tlsListen({ key: join(dir, 'junk.pem') })] } }), 'sip.listen[0].key', /no usable private key/],
    ['the key of another certificate', () => ({ sip: { listen: [tlsListen({ key: pki.client.keyFile })] } }), 'sip.listen[0].key', /not the private key/],
    ['a certificate on a udp listener', () => ({ sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 1, cert: pki.server.certFile }] } }), 'sip.listen[0].cert', /only a tls listener/],
  ])('refuses %s, naming the field', (_what, input, field, message) => {
    const e = errorOf(input());
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
  });

  it('a relative path that does not exist next to the config file is refused with the resolved path', () => {
    const e = errorOf({ sip: { listen: [tlsListen({ cert: 'server.crt' })] } }, dir);
    expect(e).toMatchObject({ field: 'sip.listen[0].cert' });
    expect(e.message).toContain(join(dir, 'server.crt'));
    // The same name next to the PKI's files is found.
    expect(validateConfig({ sip: { listen: [tlsListen({ cert: 'server.crt', key: 'server.key' })] } }, { baseDir: pki.dir }).sip.listen[0]!.cert).toBe(pki.server.certFile);
  });
});

describe.skipIf(!hasOpenssl)('trunk config: outgoing TLS', () => {
  it('defaults to Node\'s CAs, verified; takes a CA file and verify: false', () => {
    expect(validateConfig(withTls()).tls).toEqual({ ca: null, verify: true });
    expect(validateConfig(withTls({ tls: { ca: pki.caFile } })).tls).toEqual({ ca: pki.caFile, verify: true });
    expect(validateConfig(withTls({ tls: { verify: false } })).tls).toEqual({ ca: null, verify: false });
  });

  it.each([
    ['a CA file without certificates', () => withTls({ tls: { ca: join(dir, 'junk.pem') } }), 'tls.ca'],
    ['a missing CA file', () => withTls({ tls: { ca: join(dir, 'nope.pem') } }), 'tls.ca'],
    ['verify that is no boolean', () => withTls({ tls: { verify: 'yes' } }), 'tls.verify'],
    ['an unknown key', () => withTls({ tls: { ciphers: 'x' } }), 'tls.ciphers'],
    ['a tls section without a tls listener', () => ({ tls: { verify: true } }), 'tls'],
  ])('refuses %s', (_what, input, field) => {
    expect(errorOf(input()).field).toBe(field);
  });
});

describe('trunk config: registrations', () => {
  const reg = (extra: Record<string, unknown> = {}) => ({ registrar: 'sip:127.0.0.1:5070', username: 'acme', password: 'pw', ...extra });

  it('fills in the defaults: expires 600, the AOR at the registrar host, the username as Contact user', () => {
    const c = validateConfig({ domains: DOMAINS, registrations: [reg(), reg({ registrar: 'sip:localhost;transport=tcp', username: 'b', contactUser: 'line-2', aor: 'sip:+4930@carrier.example', expires: 120, inbound: { domain: 'PBX.trunk.sipkit.test' }, outbound: { instanceId: '2b7a2e9c-8d8f-4f7e-9a3c-0f4f8e3a1b2c' } })] });
    expect(c.registrations).toEqual([
      { registrar: 'sip:127.0.0.1:5070', username: 'acme', password: 'pw', expires: 600, aor: 'sip:acme@127.0.0.1', contactUser: 'acme' },
      {
        registrar: 'sip:localhost;transport=tcp', username: 'b', password: 'pw', expires: 120, aor: 'sip:+4930@carrier.example', contactUser: 'line-2',
        outbound: { instanceId: '2b7a2e9c-8d8f-4f7e-9a3c-0f4f8e3a1b2c', regId: 1 },
        // localhost: both loopbacks may send its calls.
        inbound: { domain: 'pbx.trunk.sipkit.test', allow: ['127.0.0.1', '::1'] },
      },
    ]);
    expect(validateConfig({}).registrations).toEqual([]);
  });

  it.each([
    [{ registrations: {} }, 'registrations'],
    [{ registrations: [reg({ registrar: 'tel:+1' })] }, 'registrations[0].registrar'],
    [{ registrations: [reg({ registrar: 'sip:user@127.0.0.1' })] }, 'registrations[0].registrar'],
    [{ registrations: [reg({ registrar: 'sips:127.0.0.1;transport=tcp' })] }, 'registrations[0].registrar'],
    [{ registrations: [reg({ registrar: 'sip:127.0.0.1;transport=sctp' })] }, 'registrations[0].registrar'],
    // The default listeners are udp and tcp: a TLS registrar needs a tls listener for its Contact.
    [{ registrations: [reg({ registrar: 'sips:127.0.0.1' })] }, 'registrations[0].registrar'],
    [{ registrations: [reg({ username: '' })] }, 'registrations[0].username'],
    [{ registrations: [reg({ password: 7 })] }, 'registrations[0].password'],
    [{ registrations: [reg({ expires: 5 })] }, 'registrations[0].expires'],
    [{ registrations: [reg({ aor: 'sip:carrier.example' })] }, 'registrations[0].aor'],
    [{ registrations: [reg({ username: 'a b' })] }, 'registrations[0].aor'],
    [{ registrations: [reg({ username: 'a b', aor: 'sip:ab@127.0.0.1' })] }, 'registrations[0].contactUser'],
    [{ registrations: [reg({ contactUser: 'x@y' })] }, 'registrations[0].contactUser'],
    [{ registrations: [reg(), reg({ registrar: 'sip:127.0.0.2' })] }, 'registrations[1].contactUser'],
    [{ registrations: [reg({ outbound: { instanceId: 'not-a-urn' } })] }, 'registrations[0].outbound.instanceId'],
    [{ registrations: [reg({ outbound: { instanceId: 'urn:uuid:2b7a2e9c-8d8f-4f7e-9a3c-0f4f8e3a1b2c', regId: 0 } })] }, 'registrations[0].outbound.regId'],
    [{ domains: DOMAINS, registrations: [reg({ inbound: { domain: 'other.trunk.sipkit.test' } })] }, 'registrations[0].inbound.domain'],
    [{ domains: DOMAINS, registrations: [reg({ inbound: { domain: 'pbx.trunk.sipkit.test', allow: ['10.0.0.0/33'] } })] }, 'registrations[0].inbound.allow[0]'],
    [{ domains: DOMAINS, registrations: [reg({ inbound: { domain: 'pbx.trunk.sipkit.test', allow: [] } })] }, 'registrations[0].inbound.allow'],
    [{ registrations: [reg({ proxy: 'sip:x' })] }, 'registrations[0].proxy'],
  ])('refuses %j', (input, field) => {
    expect(errorOf(input).field).toBe(field);
  });

  it('a registrar named by host (RFC 3263 locates it): the AOR defaults to that host; its calls are trusted from its DNS addresses unless inbound.allow says otherwise', () => {
    const c = validateConfig({
      domains: DOMAINS,
      registrations: [
        reg({ registrar: 'sip:carrier.example', inbound: { domain: 'pbx.trunk.sipkit.test' } }),
        reg({ registrar: 'sip:carrier.example;transport=tcp', username: 'b', inbound: { domain: 'pbx.trunk.sipkit.test', allow: ['192.0.2.0/24'] } }),
      ],
    });
    expect(c.registrations.map((r) => [r.registrar, r.aor, r.inbound])).toEqual([
      ['sip:carrier.example', 'sip:acme@carrier.example', { domain: 'pbx.trunk.sipkit.test', allow: [], registrarByName: true }],
      ['sip:carrier.example;transport=tcp', 'sip:b@carrier.example', { domain: 'pbx.trunk.sipkit.test', allow: ['192.0.2.0/24'] }],
    ]);
  });

  it.skipIf(!hasOpenssl)('a sips: registrar is fine with a tls listener', () => {
    expect(validateConfig(withTls({ registrations: [reg({ registrar: 'sips:127.0.0.1:5071' })] })).registrations[0]!.registrar).toBe('sips:127.0.0.1:5071');
  });
});

describe('registrations: calls from the carrier to the registered Contact', () => {
  const domains = { 'pbx.trunk.sipkit.test': { routes: [{ prefix: '49', targets: ['sip:127.0.0.1:5080'] }, { prefix: '', targets: ['sip:desk@127.0.0.1:5090'] }] } };
  const config = validateConfig({ domains: DOMAINS, registrations: [{ registrar: 'sip:127.0.0.2:5070', username: 'acme', password: 'pw', inbound: { domain: 'pbx.trunk.sipkit.test' } }, { registrar: 'sip:127.0.0.3', username: 'other', password: 'pw' }] });
  const regs = createRegistrations(config.registrations, { domains });
  const source = (address: string): MessageSource => ({ address: { address, port: 5070 }, transport: { protocol: 'udp' } }) as unknown as MessageSource;
  const invite = (uri: string, to = 'sip:4930123@127.0.0.2') => createRequest({ method: 'INVITE', uri, from: '<sip:carol@127.0.0.2>;tag=a', to: `<${to}>`, callId: 'c1', cseq: 1 });
  const record = (tags: Record<string, string>) => ({ tags }) as unknown as CallRecord;

  it('an INVITE to the Contact from the registrar is let in unchallenged, into the inbound domain, with the number dialled in To', () => {
    const d = regs.authenticate(invite('sip:acme@127.0.0.1:5060'), source('127.0.0.2'));
    expect(d).toEqual({ ok: true, tags: { domain: 'pbx.trunk.sipkit.test', auth: REGISTRATION_AUTH, registrar: 'sip:127.0.0.2:5070', number: '4930123' } });
    // Routed by that number with the domain's routes.
    expect(regs.route(record((d as { tags: Record<string, string> }).tags))).toEqual([{ uri: 'sip:4930123@127.0.0.1:5080' }]);
    expect(regs.route(record({ ...(d as { tags: Record<string, string> }).tags, number: '1234' }))).toEqual([{ uri: 'sip:desk@127.0.0.1:5090' }]);
  });

  it('from any other address, to another user, or to a trunk domain it is none of its business (digest auth follows)', () => {
    expect(regs.authenticate(invite('sip:acme@127.0.0.1:5060'), source('127.0.0.9'))).toBeUndefined();
    expect(regs.authenticate(invite('sip:trunk@127.0.0.1:5060'), source('127.0.0.2'))).toBeUndefined();
    expect(regs.authenticate(invite('sip:acme@pbx.trunk.sipkit.test'), source('127.0.0.2'))).toBeUndefined();
    expect(regs.route(record({ domain: 'pbx.trunk.sipkit.test', auth: 'digest' }))).toBeUndefined();
  });

  it('a registration without inbound refuses its registrar\'s calls with 403', () => {
    const d = regs.authenticate(invite('sip:other@127.0.0.1:5060'), source('127.0.0.3'));
    expect(d?.ok).toBe(false);
    expect(d && !d.ok && d.response.status).toBe(403);
  });
});
