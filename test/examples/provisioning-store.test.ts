import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DomainConfig } from '../../examples/trunk-server/config.js';
import { StoreError, TrunkStore } from '../../examples/trunk-server/trunk-store.js';

// The trunk store on its own: what it publishes into the live domains, and how it saves.

const D = 'acme.trunk.example.test';

function store(path: string | null = null, domains: Record<string, DomainConfig> = {}) {
  return { domains, store: new TrunkStore({ domains, baseDomain: 'trunk.example.test', path }) };
}

describe('TrunkStore', () => {
  it('publishes a fresh domain object on every change: what a call in progress read stays as it was', () => {
    const { domains, store: s } = store();
    s.create('acme');
    s.putExtension('acme', '1000', { password: 'old' }, 'create');
    s.setRoutes('acme', [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }]);
    const seenByCall = domains[D]!;
    const oldHa1 = seenByCall.extensions['1000']!.ha1!.MD5;
    s.putExtension('acme', '1000', { password: 'new' }, 'upsert');
    s.setRoutes('acme', [{ prefix: '', targets: ['sip:127.0.0.1:5090'] }]);
    s.setAuth('acme', { mode: 'ip', allow: ['127.0.0.1'] });
    expect(seenByCall.extensions['1000']!.ha1!.MD5).toBe(oldHa1);
    expect(seenByCall.routes[0]!.targets).toEqual(['sip:127.0.0.1:5080']);
    expect(seenByCall.auth).toBeUndefined();
    expect(domains[D]).not.toBe(seenByCall);
    expect(domains[D]!.extensions['1000']!.ha1!.MD5).not.toBe(oldHa1);
    expect(domains[D]!.routes[0]!.targets).toEqual(['sip:127.0.0.1:5090']);
    expect(domains[D]!.auth).toEqual({ mode: 'ip', allow: ['127.0.0.1'] });
    s.remove('acme');
    expect(Object.hasOwn(domains, D)).toBe(false);
  });

  it('leaves the config file\'s domains alone and refuses their names', () => {
    const config: DomainConfig = { extensions: {}, routes: [] };
    const { domains, store: s } = store(null, { [D]: config });
    expect(() => s.create('acme')).toThrow(StoreError);
    expect(domains[D]).toBe(config);
    expect(() => s.get('acme')).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('a username such as __proto__ is an own entry, not a prototype', () => {
    const { domains, store: s } = store();
    s.create('acme');
    s.putExtension('acme', '__proto__', { password: 'x' }, 'create');
    expect(Object.hasOwn(domains[D]!.extensions, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(domains[D]!.extensions)).toBe(Object.prototype);
  });

  it('saves atomically, coalescing changes made while a write waits, and loads what it saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipkit-store-'));
    const path = join(dir, 'trunks.json');
    const { store: s } = store(path);
    s.create('a');
    const one = s.save();
    s.create('b');
    const two = s.save();
    s.create('c');
    const three = s.save();
    expect(three).toBe(two); // not started yet: c rides along with b's write
    await Promise.all([one, two, three]);
    expect(JSON.parse(readFileSync(path, 'utf8')).trunks.map((t: { name: string }) => t.name)).toEqual(['a', 'b', 'c']);
    expect(readdirSync(dir)).toEqual(['trunks.json']);
    const domains: Record<string, DomainConfig> = {};
    const loaded = TrunkStore.open({ domains, baseDomain: 'other.example.test', path });
    expect(loaded.list().map((t) => t.domain)).toEqual(['a.trunk.example.test', 'b.trunk.example.test', 'c.trunk.example.test']);
    expect(Object.keys(domains)).toHaveLength(3);
  });

  it('a failed write rejects the save, leaves no temp file and the next save still runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipkit-store-'));
    const { store: s } = store(join(dir, 'missing-dir', 'trunks.json'));
    s.create('a');
    await expect(s.save()).rejects.toThrow(/ENOENT/);
    await expect(s.save()).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
