import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';

// The per-domain `auth: { mode, allow }` of IP-based trunk auth, as the config file gives it.

const withAuth = (auth: unknown) =>
  validateConfig({ domains: { 'pbx.example.test': { extensions: {}, auth, routes: [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }] } } });

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('config: a domain\'s auth mode and allow list', () => {
  it('accepts every mode with IPv4 and IPv6 rules, and keeps algorithms alongside', () => {
    for (const mode of ['ip', 'ip+digest', 'ip-or-digest'] as const) {
      const c = withAuth({ mode, allow: ['203.0.113.0/24', '2001:db8::/32', '127.0.0.1'], algorithms: ['MD5'] });
      expect(c.domains['pbx.example.test']!.auth).toEqual({ mode, allow: ['203.0.113.0/24', '2001:db8::/32', '127.0.0.1'], algorithms: ['MD5'] });
    }
    expect(withAuth({ mode: 'digest' }).domains['pbx.example.test']!.auth).toEqual({ mode: 'digest' });
  });

  it('names the field of a bad mode, a bad rule, a missing allow list and an unknown key', () => {
    expect(fieldOf(() => withAuth({ mode: 'basic', allow: ['10.0.0.0/8'] }))).toBe('domains.pbx.example.test.auth.mode');
    expect(fieldOf(() => withAuth({ mode: 'ip', allow: ['10.0.0.0/8', '10.0.0.1/8'] }))).toBe('domains.pbx.example.test.auth.allow[1]');
    expect(fieldOf(() => withAuth({ mode: 'ip', allow: ['2001:db8::/129'] }))).toBe('domains.pbx.example.test.auth.allow[0]');
    expect(fieldOf(() => withAuth({ mode: 'ip', allow: 'x' }))).toBe('domains.pbx.example.test.auth.allow');
    expect(fieldOf(() => withAuth({ mode: 'ip-or-digest' }))).toBe('domains.pbx.example.test.auth.allow');
    expect(fieldOf(() => withAuth({ mode: 'ip', allow: [] }))).toBe('domains.pbx.example.test.auth.allow');
    expect(fieldOf(() => withAuth({ allowed: [] }))).toBe('domains.pbx.example.test.auth.allowed');
  });
});

describe('config: provisioning', () => {
  it('the embedded default saves to trunks.json under trunk.sipkit.test; a config file saves only when it names a storePath', () => {
    expect(defaultConfig().provisioning).toEqual({ baseDomain: 'trunk.sipkit.test', storePath: 'trunks.json' });
    expect(validateConfig({}).provisioning).toEqual({ baseDomain: 'trunk.sipkit.test', storePath: null });
    expect(validateConfig({ provisioning: { baseDomain: 'Trunk.Example.TEST', storePath: '/var/lib/trunk/trunks.json' } }).provisioning).toEqual({
      baseDomain: 'trunk.example.test',
      storePath: '/var/lib/trunk/trunks.json',
    });
  });

  it('names the field of a bad base domain, store path or unknown key', () => {
    expect(fieldOf(() => validateConfig({ provisioning: { baseDomain: 'bad_domain.test' } }))).toBe('provisioning.baseDomain');
    expect(fieldOf(() => validateConfig({ provisioning: { baseDomain: 'a..b' } }))).toBe('provisioning.baseDomain');
    expect(fieldOf(() => validateConfig({ provisioning: { storePath: '' } }))).toBe('provisioning.storePath');
    expect(fieldOf(() => validateConfig({ provisioning: { path: 'x' } }))).toBe('provisioning.path');
  });
});
