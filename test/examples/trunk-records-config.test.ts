import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk } from '../../examples/trunk-server/server.js';

function errorOf(input: unknown): string {
  try {
    validateConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('accepted');
}

describe('trunk config: instance and records (issue #18)', () => {
  it('by default the records stay in the process: no database, the instance named <hostname>-<pid>', () => {
    for (const c of [defaultConfig(), validateConfig({})]) {
      expect(c.records).toEqual({ store: 'memory', url: null, batchMs: 50, lostAfterSeconds: 60, retainDays: 90 });
      expect(c.instance.id).toMatch(new RegExp(`-${process.pid}$`));
      expect(c.instance.id.startsWith(hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 10))).toBe(true);
    }
  });

  it('reads instance.id and records { store, url, batchMs, lostAfterSeconds }', () => {
    const c = validateConfig({ instance: { id: 'trunk-2' }, records: { store: 'postgres', url: 'postgres://u@127.0.0.1:5432/trunk', batchMs: 20, lostAfterSeconds: 15 } });
    expect(c.instance).toEqual({ id: 'trunk-2' });
    expect(c.records).toEqual({ store: 'postgres', url: 'postgres://u@127.0.0.1:5432/trunk', batchMs: 20, lostAfterSeconds: 15, retainDays: 90 });
    // The url may come later (a launcher that starts the database fills it in).
    expect(validateConfig({ records: { store: 'postgres' } }).records).toEqual({ store: 'postgres', url: null, batchMs: 50, lostAfterSeconds: 60, retainDays: 90 });
  });

  it('records.retainDays: whole days, 0 keeps everything; anything else is refused saying what is allowed', () => {
    expect(validateConfig({ records: { store: 'postgres', retainDays: 30 } }).records.retainDays).toBe(30);
    expect(validateConfig({ records: { store: 'postgres', retainDays: 0 } }).records.retainDays).toBe(0);
    expect(validateConfig({ records: { store: 'postgres', retainDays: 36_500 } }).records.retainDays).toBe(36_500);
    for (const bad of [-1, 1.5, '30', null, 36_501, Number.NaN]) {
      let err: unknown;
      try {
        validateConfig({ records: { store: 'postgres', retainDays: bad } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('records.retainDays');
      expect((err as ConfigError).message).toBe('config: records.retainDays: must be a whole number of days from 1 to 36500, or 0 to keep calls and CDRs forever');
    }
  });

  it('names the bad field', () => {
    expect(errorOf({ instance: { id: '' } })).toBe('instance.id');
    expect(errorOf({ instance: { id: 'a b' } })).toBe('instance.id');
    expect(errorOf({ instance: { name: 'x' } })).toBe('instance.name');
    expect(errorOf({ records: { store: 'redis' } })).toBe('records.store');
    expect(errorOf({ records: { store: 'postgres', url: 'mysql://x' } })).toBe('records.url');
    expect(errorOf({ records: { url: 'postgres://x/y' } })).toBe('records.url');
    expect(errorOf({ records: { store: 'postgres', batchMs: 0 } })).toBe('records.batchMs');
    expect(errorOf({ records: { store: 'postgres', lostAfterSeconds: 0 } })).toBe('records.lostAfterSeconds');
    expect(errorOf({ records: { size: 1 } })).toBe('records.size');
  });

  it('store postgres without a url: the trunk does not start, and says which field', async () => {
    const c = validateConfig({ records: { store: 'postgres' }, sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] }, http: { host: '127.0.0.1', port: 0, token: 't' } });
    await expect(startTrunk(c)).rejects.toMatchObject({ field: 'records.url' });
  });

  it('the server loads the PostgreSQL client only for store postgres (a dynamic import): sipkit and `npm start` need no database', () => {
    const server = readFileSync(new URL('../../examples/trunk-server/server.ts', import.meta.url), 'utf8');
    expect(server).not.toMatch(/^import (?!type ).*from '(pg|\.\/pg-records\.js)'/m);
    expect(server).toContain("await import('./pg-records.js')");
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies?: Record<string, string> };
    expect(pkg.dependencies ?? {}).toEqual({});
  });
});
