import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';
import { routeFor } from '../../examples/trunk-server/routing.js';

function errorOf(input: unknown): string {
  try {
    validateConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('accepted');
}

describe('trunk config', () => {
  it('the embedded default is the documented example, with a random secret each time', () => {
    const a = defaultConfig();
    const b = defaultConfig();
    expect(a.sip.listen).toEqual([
      { transport: 'udp', host: '127.0.0.1', port: 5060 },
      { transport: 'tcp', host: '127.0.0.1', port: 5060 },
    ]);
    expect(a.http).toEqual({ host: '127.0.0.1', port: 8080, token: 'demo-token' });
    expect(a.auth.algorithms).toEqual(['SHA-256', 'MD5']);
    expect(a.domains['demo.trunk.sipkit.test']!.extensions['1000']).toEqual({ password: 'sipkit-demo' });
    expect(a.domains['demo.trunk.sipkit.test']!.routes).toEqual([{ prefix: '', targets: ['sip:127.0.0.1:5080'] }]);
    expect(a.media).toBe('direct');
    expect(a.noAnswerTimeoutSeconds).toBe(60);
    expect(a.cdr.path).toBe('cdr.jsonl');
    expect(a.auth.secret).not.toBe(b.auth.secret);
  });

  it('takes sendThread on a udp listener', () => {
    expect(validateConfig({ sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 1, sendThread: false }] } }).sip.listen[0]).toMatchObject({ sendThread: false });
  });

  it.each([
    [{ sip: { listen: [] } }, 'sip.listen'],
    [{ sip: { listen: [{ transport: 'sctp', host: 'h', port: 1 }] } }, 'sip.listen[0].transport'],
    [{ sip: { listen: [{ transport: 'tcp', host: 'h', port: 1, sendThread: true }] } }, 'sip.listen[0].sendThread'],
    [{ sip: { listen: [{ transport: 'udp', host: 'h', port: 1, sendThread: 'yes' }] } }, 'sip.listen[0].sendThread'],
    [{ http: { host: 'h', port: 99999, token: 't' } }, 'http.port'],
    [{ auth: { algorithms: ['SHA-1'] } }, 'auth.algorithms[0]'],
    [{ auth: { secret: 'short' } }, 'auth.secret'],
    [{ media: 'magic' }, 'media'],
    [{ domains: { 'a.trunk.x': { extensions: { '1': {} }, routes: [] } } }, 'domains.a.trunk.x.extensions.1'],
    [{ domains: { 'a.trunk.x': { extensions: {}, routes: [{ prefix: '', targets: ['http://x'] }] } } }, 'domains.a.trunk.x.routes[0].targets[0]'],
    [{ bogus: 1 }, 'bogus'],
  ])('names the bad field: %j → %s', (input, field) => {
    expect(errorOf(input)).toBe(field);
  });

  it('routes by the longest number prefix', () => {
    const d = { extensions: {}, routes: [{ prefix: '', targets: ['sip:default'] }, { prefix: '1555', targets: ['sip:us'] }, { prefix: '15551', targets: ['sip:a', 'sip:b'] }] };
    expect(routeFor('15551234', d)).toEqual(['sip:a', 'sip:b']);
    expect(routeFor('15559', d)).toEqual(['sip:us']);
    expect(routeFor('4930', d)).toEqual(['sip:default']);
    expect(routeFor('4930', { routes: [{ prefix: '1', targets: ['sip:x'] }] })).toEqual([]);
  });
});
