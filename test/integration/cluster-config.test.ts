import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClusterConfigError, FRONT_TEMPLATE, instanceConfig, renderFront, validateClusterConfig } from '../../examples/cluster/cluster.js';
import { validateConfig } from '../../examples/trunk-server/config.js';

// The launcher's pure parts (examples/cluster): its config, the per-instance trunk configs and the
// front's rendered Kamailio config. Running them is the peer tests' (cluster.peer.test.ts).

const base = { instances: { count: 3, sipPort: 6000, httpPort: 9000 }, workDir: '/tmp/cluster-config-test' };

describe('cluster config', () => {
  it('fills defaults and names the bad field', () => {
    const c = validateClusterConfig(base);
    expect(c.front).toMatchObject({ host: '127.0.0.1', port: 5060, children: 4, pingIntervalSeconds: 2, probingThreshold: 2, inviteTimeoutMs: 2000, pingTimeoutMs: 1000, requestTimeoutMs: 32_000 });
    expect(c.instances).toEqual({ count: 3, host: '127.0.0.1', sipPort: 6000, httpPort: 9000 });
    expect(c.postgres).toBeNull();
    expect(validateClusterConfig({ ...base, postgres: 'local' }).postgres).toBe('local');
    expect(validateClusterConfig({ ...base, postgres: { url: 'postgres://u@db:5432/calls' } }).postgres).toEqual({ url: 'postgres://u@db:5432/calls' });
    const bad = (v: unknown, field: string): void => {
      expect(() => validateClusterConfig(v)).toThrow(ClusterConfigError);
      try {
        validateClusterConfig(v);
      } catch (err) {
        expect((err as ClusterConfigError).field).toBe(field);
      }
    };
    bad({ ...base, frnt: {} }, 'frnt');
    bad({ ...base, front: { port: 70000 } }, 'front.port');
    bad({ ...base, instances: { count: 0 } }, 'instances.count');
    bad({ ...base, instances: { count: 3, sipPort: 65534 } }, 'instances.sipPort');
    bad({ ...base, postgres: { url: 'mysql://x' } }, 'postgres.url');
    bad({ ...base, postgres: 'remote' }, 'postgres');
  });
});

describe('per-instance trunk configs', () => {
  const cluster = validateClusterConfig({
    ...base,
    trunk: {
      http: { token: 't0ken' },
      auth: { algorithms: ['MD5'] },
      media: { mode: 'relay', address: '127.0.0.1', ports: { min: 20000, max: 20598 } },
      domains: { 'a.test': { extensions: { '1': { password: 'p' } }, routes: [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }] } },
    },
  });
  const configs = [0, 1, 2].map((i) => instanceConfig(cluster, i, { sip: 6000 + i, http: 9000 + i }, 'shared-secret-0123456789abcdef', { url: 'postgres://db/x' }, true));

  it('each its own ports, id, files and RTP ports; one secret; valid trunk configs', () => {
    for (const [i, c] of configs.entries()) {
      // The front is a trusted proxy: per-source decisions see the caller its Via names.
      expect(c.sip).toEqual({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 6000 + i }], trustedProxies: ['127.0.0.1'] });
      expect(c.http).toEqual({ host: '127.0.0.1', port: 9000 + i, token: 't0ken' });
      expect(c.auth).toEqual({ algorithms: ['MD5'], secret: 'shared-secret-0123456789abcdef' });
      expect(c.instance).toEqual({ id: `trunk-${i + 1}` });
      expect(c.records).toEqual({ store: 'postgres', url: 'postgres://db/x' });
      expect((c.cdr as { path: string }).path).toContain(`trunk-${i + 1}`);
      expect(() => validateConfig(c)).not.toThrow();
    }
    const ranges = configs.map((c) => (c.media as { ports: { min: number; max: number } }).ports);
    expect(ranges).toEqual([
      { min: 20000, max: 20196 },
      { min: 20198, max: 20394 },
      { min: 20396, max: 20592 },
    ]);
  });

  it('drains on SIGTERM and has no per-source limit below the total (every call comes from the front) unless told', () => {
    expect(configs[0]!.shutdown).toEqual({ mode: 'drain' });
    expect((configs[0]!.limits as { maxCallsPerSource: number }).maxCallsPerSource).toBe(10_000);
    const told = validateClusterConfig({ ...base, trunk: { shutdown: { mode: 'hangup' }, limits: { maxCalls: 50, maxCallsPerSource: 5 } } });
    const c = instanceConfig(told, 0, { sip: 1, http: 2 }, 's'.repeat(32), null, true);
    expect(c.shutdown).toEqual({ mode: 'hangup' });
    expect(c.limits).toEqual({ maxCalls: 50, maxCallsPerSource: 5 });
    expect(c.records).toEqual({ store: 'memory' });
  });
});

describe("the front's Kamailio config", () => {
  const values = { DEBUG: 1, CHILDREN: 4, LISTEN: '127.0.0.1:5060', INSTANCE_SIDE: '127.0.0.1:5059', MPATH: '/m', CTL: '/tmp/k.ctl', INVITE_TIMEOUT_MS: 2000, PING_TIMEOUT_MS: 1000, REQUEST_TIMEOUT_MS: 32000, DISPATCHER_LIST: '/tmp/d.list', PING_INTERVAL: 2, PROBING_THRESHOLD: 1, INACTIVE_THRESHOLD: 1 };

  it('every placeholder of the template is filled, none is left', () => {
    const cfg = renderFront(readFileSync(FRONT_TEMPLATE, 'utf8'), values);
    expect(cfg).not.toMatch(/@[A-Z_]+@/);
    expect(cfg).toContain('listen=udp:127.0.0.1:5060');
    expect(cfg).toContain('ds_select_dst("1", "0")');
    expect(cfg).toContain('modparam("dispatcher", "ds_ping_interval", 2)');
    expect(cfg).toContain('modparam("tm", "fr_timer", 1000)');
    expect(cfg).toContain('t_set_fr(120000, 2000)');
    expect(cfg).toContain('t_set_fr(120000, 32000)');
    expect(cfg).toContain('modparam("dispatcher", "ds_ping_from", "sip:front@127.0.0.1:5060")');
    const { CTL: _, ...missing } = values;
    expect(() => renderFront(readFileSync(FRONT_TEMPLATE, 'utf8'), missing)).toThrow(/@CTL@/);
  });
});
