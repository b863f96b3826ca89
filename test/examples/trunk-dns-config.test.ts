import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../examples/trunk-server/config.js';
import { routeTargets } from '../../examples/trunk-server/network.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../support/tls-certs.js';

// The trunk's DNS and probing configuration (issue #17, "The trunk server").

function errorOf(input: unknown): { field: string; message: string } {
  try {
    validateConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return { field: (e as ConfigError).field, message: (e as ConfigError).message };
  }
  throw new Error('accepted');
}

const domainWith = (targets: string[]) => ({ 'pbx.test': { extensions: {}, routes: [{ prefix: '', targets }] } });

describe('trunk config: dns, probe and targets by name', () => {
  it('dns.servers defaults to the system resolvers; IP addresses with optional ports are kept', () => {
    expect(validateConfig({}).dns).toEqual({ servers: null });
    expect(validateConfig({ dns: {} }).dns).toEqual({ servers: null });
    expect(validateConfig({ dns: { servers: null } }).dns).toEqual({ servers: null });
    expect(validateConfig({ dns: { servers: ['127.0.0.1:53', '192.0.2.53', '[::1]:5353', '2001:db8::53'] } }).dns.servers).toEqual(['127.0.0.1:53', '192.0.2.53', '[::1]:5353', '2001:db8::53']);
  });

  it.each([
    [{ dns: [] }, 'dns'],
    [{ dns: { server: ['127.0.0.1'] } }, 'dns.server'],
    [{ dns: { servers: [] } }, 'dns.servers'],
    [{ dns: { servers: '127.0.0.1' } }, 'dns.servers'],
    [{ dns: { servers: ['ns.example.com'] } }, 'dns.servers[0]'],
    [{ dns: { servers: ['127.0.0.1', '127.0.0.1:0'] } }, 'dns.servers[1]'],
    [{ dns: { servers: ['127.0.0.1:70000'] } }, 'dns.servers[0]'],
    [{ dns: { servers: ['[::1]'] } }, 'dns.servers[0]'],
    [{ dns: { servers: Array(9).fill('127.0.0.1') } }, 'dns.servers'],
  ])('dns: %j is refused naming %s', (input, field) => {
    expect(errorOf(input).field).toBe(field);
  });

  it('probe is off by default; given, its keys default to 30 s, 3 failures, 2 successes, 5 s', () => {
    expect(validateConfig({}).probe).toBeNull();
    expect(validateConfig({ probe: null }).probe).toBeNull();
    expect(validateConfig({ probe: {} }).probe).toEqual({ intervalSeconds: 30, failureThreshold: 3, successThreshold: 2, timeoutSeconds: 5 });
    expect(validateConfig({ probe: { intervalSeconds: 10, failureThreshold: 1, successThreshold: 1, timeoutSeconds: 2 } }).probe).toEqual({ intervalSeconds: 10, failureThreshold: 1, successThreshold: 1, timeoutSeconds: 2 });
  });

  it.each([
    [{ probe: true }, 'probe'],
    [{ probe: { interval: 10 } }, 'probe.interval'],
    [{ probe: { intervalSeconds: 0 } }, 'probe.intervalSeconds'],
    [{ probe: { intervalSeconds: 1.5 } }, 'probe.intervalSeconds'],
    [{ probe: { failureThreshold: 0 } }, 'probe.failureThreshold'],
    [{ probe: { successThreshold: 101 } }, 'probe.successThreshold'],
    [{ probe: { intervalSeconds: 5, timeoutSeconds: 5 } }, 'probe.timeoutSeconds'],
  ])('probe: %j is refused naming %s', (input, field) => {
    expect(errorOf(input).field).toBe(field);
  });

  it('route targets may name hosts and domains (RFC 3263), IP literals stay as they are', () => {
    const targets = ['sip:carrier.example', 'sip:gw2.carrier.example:5060;transport=tcp', 'sip:192.0.2.1:5060', 'sip:[2001:db8::1]'];
    expect(validateConfig({ domains: domainWith(targets) }).domains['pbx.test']!.routes[0]!.targets).toEqual(targets);
  });

  it('a target that fixes a transport the trunk does not listen on is refused now', () => {
    const udpOnly = { sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] } };
    expect(errorOf({ ...udpOnly, domains: domainWith(['sip:a.example', 'sip:gw.example;transport=tcp']) })).toMatchObject({ field: 'domains.pbx.test.routes[0].targets[1]', message: expect.stringContaining('tcp listener') });
    expect(errorOf({ domains: domainWith(['sips:gw.carrier.example:5061']) })).toMatchObject({ field: 'domains.pbx.test.routes[0].targets[0]', message: expect.stringContaining('tls listener') });
    expect(errorOf({ domains: domainWith(['sips:gw.carrier.example;transport=udp']) }).message).toContain('TLS only');
    expect(errorOf({ domains: domainWith(['tel:+15551234']) }).message).toContain('sip: or sips: URI');
  });

  it('routeTargets lists every target of every domain once', () => {
    const domains = { a: { routes: [{ targets: ['sip:x.example', 'sip:y.example'] }, { targets: ['sip:x.example'] }] }, b: { routes: [{ targets: ['sip:y.example', 'sip:z.example'] }] } };
    expect(routeTargets(domains)).toEqual(['sip:x.example', 'sip:y.example', 'sip:z.example']);
  });
});

describe.skipIf(!hasOpenssl)('trunk config: sips: targets with a tls listener', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki?.remove());

  it('accepts sips: targets by name when the trunk listens on TLS', () => {
    const c = validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tls', host: '127.0.0.1', port: 0, cert: pki.server.certFile, key: pki.server.keyFile }] },
      domains: domainWith(['sips:gw.carrier.example:5061', 'sips:carrier.example']),
    });
    expect(c.domains['pbx.test']!.routes[0]!.targets).toEqual(['sips:gw.carrier.example:5061', 'sips:carrier.example']);
  });
});
