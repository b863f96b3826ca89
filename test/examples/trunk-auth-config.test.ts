import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';

function errorOf(input: unknown): string {
  try {
    validateConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('accepted');
}

const route = [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }];

describe('trunk config: auth per domain and extension', () => {
  it('reads domains.<d>.auth.algorithms, extensions.<u>.algorithms and auth.maxLiveNonces', () => {
    const c = validateConfig({
      auth: { maxLiveNonces: 5000 },
      domains: {
        'Old.Trunk.X': { auth: { algorithms: ['MD5'] }, extensions: { '1': { password: 'p', algorithms: ['MD5', 'SHA-256'] } }, routes: route },
        'new.trunk.x': { extensions: { '2': { password: 'p' } }, routes: route },
      },
    });
    expect(c.auth.maxLiveNonces).toBe(5000);
    expect(c.domains['old.trunk.x']!.auth).toEqual({ algorithms: ['MD5'] });
    expect(c.domains['old.trunk.x']!.extensions['1']!.algorithms).toEqual(['MD5', 'SHA-256']);
    expect(c.domains['new.trunk.x']!.auth).toBeUndefined();
    expect(c.domains['new.trunk.x']!.extensions['2']!.algorithms).toBeUndefined();
    expect(defaultConfig().auth.maxLiveNonces).toBe(1_000_000);
  });

  it.each([
    [{ auth: { maxLiveNonces: 0 } }, 'auth.maxLiveNonces'],
    [{ auth: { algorithms: [] } }, 'auth.algorithms'],
    [{ auth: { algorithms: ['MD5', 'MD5'] } }, 'auth.algorithms'],
    [{ domains: { 'a.x': { auth: { algorithms: [] }, extensions: {}, routes: route } } }, 'domains.a.x.auth.algorithms'],
    [{ domains: { 'a.x': { auth: { algorithms: ['SHA-1'] }, extensions: {}, routes: route } } }, 'domains.a.x.auth.algorithms[0]'],
    [{ domains: { 'a.x': { auth: 'MD5', extensions: {}, routes: route } } }, 'domains.a.x.auth'],
    [{ domains: { 'a.x': { auth: { algorithm: ['MD5'] }, extensions: {}, routes: route } } }, 'domains.a.x.auth.algorithm'],
    [{ domains: { 'a.x': { extensions: { '1': { password: 'p', algorithms: 'MD5' } }, routes: route } } }, 'domains.a.x.extensions.1.algorithms'],
    [{ domains: { 'a.x': { extensions: { '1': { password: 'p', algorithms: ['md4'] } }, routes: route } } }, 'domains.a.x.extensions.1.algorithms[0]'],
    // HA1-only: every accepted algorithm needs its stored hash, or the extension could never log in with it.
    [{ domains: { 'a.x': { extensions: { '1': { ha1: { MD5: '0'.repeat(32) }, algorithms: ['SHA-256'] } }, routes: route } } }, 'domains.a.x.extensions.1.algorithms'],
  ])('names the bad field: %j → %s', (input, field) => {
    expect(errorOf(input)).toBe(field);
  });

  it('an HA1-only extension may restrict itself to the algorithms it has hashes for', () => {
    const c = validateConfig({ domains: { 'a.x': { extensions: { '1': { ha1: { MD5: '0'.repeat(32) }, algorithms: ['MD5', 'MD5-sess'] } }, routes: route } } });
    expect(c.domains['a.x']!.extensions['1']!.algorithms).toEqual(['MD5', 'MD5-sess']);
  });
});
