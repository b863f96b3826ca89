import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';

function fieldOf(input: unknown): string {
  try {
    validateConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('accepted');
}

describe('trunk config: sessionTimer (RFC 4028)', () => {
  it('is on by default with 1800 s and the 90 s floor', () => {
    expect(defaultConfig().sessionTimer).toEqual({ seconds: 1800, minSeconds: 90 });
    expect(validateConfig({}).sessionTimer).toEqual({ seconds: 1800, minSeconds: 90 });
  });

  it('null turns it off; fields are read and checked', () => {
    expect(validateConfig({ sessionTimer: null }).sessionTimer).toBeNull();
    expect(validateConfig({ sessionTimer: { seconds: 600, minSeconds: 120, refresher: 'local' } }).sessionTimer).toEqual({ seconds: 600, minSeconds: 120, refresher: 'local' });
    expect(validateConfig({ sessionTimer: { minSeconds: 1900 } }).sessionTimer).toEqual({ seconds: 1900, minSeconds: 1900 });
    expect(validateConfig({ sessionTimer: { seconds: 6, minSeconds: 4, allowShortIntervals: true } }).sessionTimer).toEqual({ seconds: 6, minSeconds: 4, allowShortIntervals: true });
  });

  it.each([
    [{ sessionTimer: 1800 }, 'sessionTimer'],
    [{ sessionTimer: { seconds: 60 } }, 'sessionTimer.seconds'],
    [{ sessionTimer: { minSeconds: 30 } }, 'sessionTimer.minSeconds'],
    [{ sessionTimer: { seconds: 100, minSeconds: 200 } }, 'sessionTimer.seconds'],
    [{ sessionTimer: { refresher: 'uac' } }, 'sessionTimer.refresher'],
    [{ sessionTimer: { allowShortIntervals: 'yes' } }, 'sessionTimer.allowShortIntervals'],
    [{ sessionTimer: { second: 90 } }, 'sessionTimer.second'],
  ])('%j is refused at %s', (input, field) => {
    expect(fieldOf(input)).toBe(field);
  });
});
