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

const PUBLIC = { sip: { listen: [{ transport: 'udp', host: '192.0.2.10', port: 5060 }] } };

describe('trunk config: media', () => {
  it('the embedded default: direct media, relay addresses on loopback for both families, ports 20000-39998', () => {
    const c = defaultConfig();
    expect([c.media, c.mediaAddress, c.mediaAddress6, c.mediaPorts]).toEqual(['direct', '127.0.0.1', '::1', { min: 20000, max: 39998 }]);
  });

  it('the older shape still works: media "relay" with a top-level mediaAddress', () => {
    const c = validateConfig({ media: 'relay', mediaAddress: '127.0.0.2' });
    expect([c.media, c.mediaAddress, c.mediaAddress6, c.mediaPorts]).toEqual(['relay', '127.0.0.2', '::1', { min: 20000, max: 39998 }]);
  });

  it('the object shape: mode, address, address6, ports', () => {
    const c = validateConfig({ media: { mode: 'relay', address: '127.0.0.3', address6: '::1', ports: { min: 30000, max: 30006 } } });
    expect([c.media, c.mediaAddress, c.mediaAddress6, c.mediaPorts]).toEqual(['relay', '127.0.0.3', '::1', { min: 30000, max: 30006 }]);
  });

  it('IPv6 media defaults to ::1 only when SIP listens on loopback; elsewhere it must be configured', () => {
    expect(validateConfig({ ...PUBLIC, media: 'relay', mediaAddress: '192.0.2.10' }).mediaAddress6).toBeNull();
    expect(validateConfig({ ...PUBLIC, media: { mode: 'relay', address: '192.0.2.10', address6: '2001:db8::10' } }).mediaAddress6).toBe('2001:db8::10');
  });

  it('one family may be switched off with null, not both', () => {
    const c = validateConfig({ media: { mode: 'relay', address: null } });
    expect([c.mediaAddress, c.mediaAddress6]).toEqual([null, '::1']);
    expect(errorOf({ media: { mode: 'relay', address: null, address6: null } })).toBe('media.address');
  });

  it.each([
    [{ media: 'magic' }, 'media'],
    [{ media: 7 }, 'media'],
    [{ media: {} }, 'media.mode'],
    [{ media: { mode: 'relay', bogus: 1 } }, 'media.bogus'],
    [{ mediaAddress: 'media.example.com' }, 'mediaAddress'],
    [{ mediaAddress: '::1' }, 'mediaAddress'],
    [{ mediaAddress: '0.0.0.0' }, 'mediaAddress'],
    [{ media: { mode: 'relay', address: '::1' } }, 'media.address'],
    [{ media: { mode: 'relay', address6: '127.0.0.1' } }, 'media.address6'],
    [{ media: { mode: 'relay', address6: '::' } }, 'media.address6'],
    [{ media: { mode: 'relay', address: '127.0.0.1' }, mediaAddress: '127.0.0.1' }, 'mediaAddress'],
    [{ media: { mode: 'relay', ports: { min: 30001, max: 30010 } } }, 'media.ports.min'],
    [{ media: { mode: 'relay', ports: { min: 30000, max: 30011 } } }, 'media.ports.max'],
    [{ media: { mode: 'relay', ports: { min: 30000, max: 30000 } } }, 'media.ports'],
    [{ media: { mode: 'relay', ports: { min: 30004, max: 30000 } } }, 'media.ports'],
    [{ media: { mode: 'relay', ports: { min: 1022, max: 2000 } } }, 'media.ports.min'],
    [{ media: { mode: 'relay', ports: { min: 1024, max: 65536 } } }, 'media.ports.max'],
    [{ media: { mode: 'relay', ports: { min: 1024 } } }, 'media.ports.max'],
    [{ media: { mode: 'relay', ports: { min: 1024, max: 2048, step: 2 } } }, 'media.ports.step'],
  ])('names the bad field: %j → %s', (input, field) => {
    expect(errorOf(input)).toBe(field);
  });
});
