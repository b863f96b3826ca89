import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk } from '../../examples/trunk-server/server.js';
import { UserAgent } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { dial, DOMAIN, http, TOKEN, trunkWithGateway, until, type TrunkSetup } from './page-harness.js';

// GET /v1.0/targets over real HTTP: each route target as DNS resolves it, and its OPTIONS health.

const setups: TrunkSetup[] = [];
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.stop()));
});

describe('trunk GET /v1.0/targets', () => {
  it('wants the bearer token and only GET', async () => {
    const s = await trunkWithGateway();
    setups.push(s);
    expect(await http(s, '/v1.0/targets', null)).toMatchObject({ status: 401, json: { error: { code: 'unauthorized' } } });
    expect((await http(s, '/v1.0/targets', 'wrong')).status).toBe(401);
    const post = await fetch(`http://127.0.0.1:${s.trunk.http.port}/v1.0/targets`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });

  it('without probing: each target resolved, health unknown', async () => {
    const s = await trunkWithGateway();
    setups.push(s);
    const gw = s.gateway.layer.transports[0]!.local;
    const r = await http(s, '/v1.0/targets');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ probing: false, dnsServers: 'system', targets: [{ uri: `sip:127.0.0.1:${gw.port}`, resolved: [`udp 127.0.0.1:${gw.port}`], state: 'unknown', probes: 0 }] });
  });

  it('with probe: the gateway answering OPTIONS is up, a silent one goes down (both logged) and calls skip it', async () => {
    const answer = 'v=0\r\no=gw 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n';
    const gateway = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })], onInvite: (c) => void c.answer({ body: answer }) });
    const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
    const gw = gateway.layer.transports[0]!.local.port;
    // Takes the OPTIONS and answers nothing.
    const silent = createSocket('udp4');
    let invitesToSilent = 0;
    silent.on('message', (m) => {
      if (m.toString('latin1').startsWith('INVITE ')) invitesToSilent++;
    });
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const quiet = silent.address().port;
    const lines: Array<{ event: string; fields: Record<string, unknown> | undefined }> = [];
    const trunk = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: TOKEN },
        auth: { secret: 'targets-test-secret-0123456789abcdef' },
        dns: { servers: ['127.0.0.1:53'] },
        probe: { intervalSeconds: 2, failureThreshold: 1, successThreshold: 1, timeoutSeconds: 1 },
        domains: {
          [DOMAIN]: { extensions: { '1000': { password: 'secret-1000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${quiet}`, `sip:127.0.0.1:${gw}`] }] },
          'other.trunk.test': { extensions: {}, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${quiet}`] }] },
        },
        cdr: { path: null },
      }),
      { log: (_level, event, fields) => lines.push({ event, fields }) },
    );
    setups.push({
      trunk,
      caller,
      gateway,
      async stop() {
        await trunk.stop('hangup');
        await caller.close();
        await gateway.close();
        silent.close();
      },
    });
    const s = setups[setups.length - 1]!;
    // Every distinct target of every domain is probed, once.
    expect(trunk.b2bua.targetHealth().map((h) => h.uri)).toEqual([`sip:127.0.0.1:${quiet}`, `sip:127.0.0.1:${gw}`]);
    const r = await until(async () => {
      const x = await http(s, '/v1.0/targets');
      x.json.targets.reverse(); // gateway first, as below
      return x.json.targets[0].state === 'up' && x.json.targets[1].state === 'down' ? x : undefined;
    }, 'one target up and one down', 500);
    expect(r.json).toMatchObject({ probing: true, dnsServers: ['127.0.0.1:53'] });
    expect(r.json.targets[0]).toMatchObject({ uri: `sip:127.0.0.1:${gw}`, resolved: [`udp 127.0.0.1:${gw}`], probedAddresses: [`udp 127.0.0.1:${gw}`] });
    expect(r.json.targets[0].lastStatus).toBeLessThan(500); // a plain UserAgent answers OPTIONS (480 here): a SIP server is there
    expect(r.json.targets[1]).toMatchObject({ uri: `sip:127.0.0.1:${quiet}`, resolved: [`udp 127.0.0.1:${quiet}`], state: 'down' });
    expect(lines.find((l) => l.event === 'target.up')?.fields).toMatchObject({ uri: `sip:127.0.0.1:${gw}` });
    expect(lines.find((l) => l.event === 'target.down')?.fields).toMatchObject({ uri: `sip:127.0.0.1:${quiet}` });
    // A call now skips the first route target, known down, and goes straight to the gateway.
    const call = dial(s, '+4930123');
    await call.answered;
    expect(invitesToSilent).toBe(0);
    await call.call.hangup();
  });
});
