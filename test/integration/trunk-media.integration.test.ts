import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import type { Logger } from '../../examples/trunk-server/log.js';
import { readSdp } from '../../examples/trunk-server/sdp-rewrite.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function udp(family: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const s = createSocket(family);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => resolve());
  });
  stops.push(() => {
    s.close();
  });
  return s;
}

/** Can every port of [base, base + 2*pairs) be bound on both loopbacks right now? */
async function rangeIsFree(base: number, pairs: number): Promise<boolean> {
  const held: Socket[] = [];
  try {
    for (let p = base; p < base + 2 * pairs; p++) {
      for (const [type, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
        const s = createSocket(type);
        held.push(s);
        const ok = await new Promise<boolean>((resolve) => {
          s.once('error', () => resolve(false));
          s.bind(p, host, () => resolve(true));
        });
        if (!ok) return false;
      }
    }
    return true;
  } finally {
    for (const s of held) {
      try {
        s.close();
      } catch {
        /* never bound */
      }
    }
  }
}

/** A small RTP range below the ephemeral ports, not in use (other test runs share this machine). */
async function freeRange(pairs: number): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const min = 22_000 + 2 * Math.floor(Math.random() * 4000);
    if (await rangeIsFree(min, pairs)) return { min, max: min + 2 * (pairs - 1) };
  }
  throw new Error('no free port range for the test');
}

/** The next datagram a socket receives, or undefined after a bounded wait. */
function nextDatagram(s: Socket, ms = 2000): Promise<{ data: string; from: string } | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      s.off('message', on);
      resolve(undefined);
    }, ms);
    const on = (msg: Buffer, r: { address: string; port: number }) => {
      clearTimeout(t);
      s.off('message', on);
      resolve({ data: msg.toString(), from: `${r.address}:${r.port}` });
    };
    s.on('message', on);
  });
}

const sdp = (family: 'IP4' | 'IP6', address: string, streams: Array<[string, number]>) =>
  ['v=0', `o=- 1 1 IN ${family} ${address}`, 's=-', `c=IN ${family} ${address}`, 't=0 0', ...streams.map(([m, p]) => `m=${m} ${p} RTP/AVP ${m === 'audio' ? 0 : 96}`), ''].join('\r\n');

interface Setup {
  trunk: TrunkServer;
  caller: UserAgent;
  /** Calls the gateway received, with their INVITE's SDP. */
  received: IncomingCall[];
  logs: string[];
}

/** A trunk (config `extra` on top) in front of a gateway that answers with `answer(offer)` and holds the call. */
async function setup(extra: Record<string, unknown>, answer: (offer: string) => string): Promise<Setup> {
  const received: IncomingCall[] = [];
  const gw = new UserAgent({
    transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })],
    onInvite: (c) => {
      received.push(c);
      void c.answer({ body: answer(Buffer.from(c.invite.body).toString()) });
    },
  });
  stops.push(() => gw.close());
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'integration-secret-0123456789abcdef', algorithms: ['SHA-256'] },
    domains: {
      'acme.trunk.sipkit.test': {
        extensions: { '2000': { password: 'pw-2000' } },
        routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.layer.transports[0]!.local.port}`] }],
      },
    },
    cdr: { path: null },
    log: { level: 'info' },
    ...extra,
  });
  const logs: string[] = [];
  const log: Logger = (level, event, fields = {}) => logs.push(`${level} ${event} ${JSON.stringify(fields)}`);
  const trunk = await startTrunk(config, { log });
  stops.push(() => trunk.stop('hangup'));
  const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
  stops.push(() => caller.close());
  return { trunk, caller, received, logs };
}

function dial(s: Setup, body: string): OutgoingCall {
  return s.caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
    destination: { address: '127.0.0.1', port: s.trunk.sip[0]!.port, transport: 'udp' },
    from: '<sip:2000@acme.trunk.sipkit.test>',
    body,
    auth: { username: '2000', password: 'pw-2000' },
  });
}

/** Answered (with the answer's SDP) or failed (with the status). */
function outcome(call: OutgoingCall): Promise<{ answer: string } | { status: number }> {
  return new Promise((resolve) => {
    call.on('answer', (res) => resolve({ answer: Buffer.from(res.body).toString() }));
    call.on('failure', (res) => resolve({ status: res.status }));
  });
}

async function answered(call: OutgoingCall): Promise<string> {
  const r = await outcome(call);
  if (!('answer' in r)) throw new Error(`call failed with ${r.status}`);
  return r.answer;
}

describe('trunk media relay over real sockets', () => {
  it('an IPv6 offer is anchored on the relay\'s IPv6 address, and RTP flows both ways through it, audio and video (#14.16)', async () => {
    const ports = await freeRange(8);
    const callerAudio = await udp('udp6', '::1');
    const callerVideo = await udp('udp6', '::1');
    const calleeAudio = await udp('udp6', '::1');
    const calleeVideo = await udp('udp6', '::1');
    const s = await setup({ media: { mode: 'relay', address: '127.0.0.1', address6: '::1', ports } }, () =>
      sdp('IP6', '::1', [
        ['audio', calleeAudio.address().port],
        ['video', calleeVideo.address().port],
      ]),
    );
    const call = dial(
      s,
      sdp('IP6', '::1', [
        ['audio', callerAudio.address().port],
        ['video', callerVideo.address().port],
      ]),
    );
    const answer = readSdp(await answered(call));
    const offer = readSdp(Buffer.from(s.received[0]!.invite.body).toString());
    // Both directions: every stream announced on the relay's IPv6 address, on a relay port.
    for (const side of [offer, answer]) {
      expect(side.streams.map((m) => [m.family, m.address])).toEqual([
        ['IP6', '::1'],
        ['IP6', '::1'],
      ]);
      for (const m of side.streams) expect(m.port >= ports.min && m.port <= ports.max).toBe(true);
    }
    const relayPorts = [...offer.streams, ...answer.streams].map((m) => m.port);
    expect(new Set(relayPorts).size).toBe(4);

    // Caller → relay (the address the answer names) → callee, per stream.
    for (const [i, from, to] of [
      [0, callerAudio, calleeAudio],
      [1, callerVideo, calleeVideo],
    ] as const) {
      const got = nextDatagram(to);
      from.send(`rtp-${i}-forward`, answer.streams[i]!.port, answer.streams[i]!.address!);
      expect(await got).toEqual({ data: `rtp-${i}-forward`, from: `::1:${offer.streams[i]!.port}` });
    }
    // And back: callee → the address the offer named → caller.
    const back = nextDatagram(callerAudio);
    calleeAudio.send('rtp-back', offer.streams[0]!.port, offer.streams[0]!.address!);
    expect(await back).toEqual({ data: 'rtp-back', from: `::1:${answer.streams[0]!.port}` });
    await call.hangup();
  });

  it('an IPv4 offer still relays on IPv4 (the older media/mediaAddress config)', async () => {
    const callerRtp = await udp('udp4', '127.0.0.1');
    const calleeRtp = await udp('udp4', '127.0.0.1');
    const s = await setup({ media: 'relay', mediaAddress: '127.0.0.1' }, () => sdp('IP4', '127.0.0.1', [['audio', calleeRtp.address().port]]));
    const call = dial(s, sdp('IP4', '127.0.0.1', [['audio', callerRtp.address().port]]));
    const answer = readSdp(await answered(call));
    expect(answer.streams[0]!.family).toBe('IP4');
    const got = nextDatagram(calleeRtp);
    callerRtp.send('v4', answer.streams[0]!.port, answer.streams[0]!.address!);
    expect((await got)?.data).toBe('v4');
    await call.hangup();
  });

  it('an offer in a family the trunk has no media address for is answered 488, and nothing reaches the gateway', async () => {
    const s = await setup({ media: { mode: 'relay', address: '127.0.0.1', address6: null } }, () => 'unused');
    const r = await outcome(dial(s, sdp('IP6', '::1', [['audio', 4000]])));
    expect(r).toEqual({ status: 488 });
    expect(s.received).toHaveLength(0);
    expect(s.logs.some((l) => l.includes('media.rejected') && l.includes('IP6'))).toBe(true);
  });

  it('a range of two calls\' ports: the third concurrent call gets 503 and media.ports_exhausted is logged; a call that ends gives its ports back (#14.18)', async () => {
    // One audio stream = a pair facing the caller + a pair facing the callee: 4 pairs hold 2 calls.
    const ports = await freeRange(4);
    const s = await setup({ media: { mode: 'relay', address: '127.0.0.1', ports } }, () => sdp('IP4', '127.0.0.1', [['audio', 5004]]));
    const offer = sdp('IP4', '127.0.0.1', [['audio', 4002]]);
    const first = dial(s, offer);
    const second = dial(s, offer);
    const [a1, a2] = await Promise.all([answered(first), answered(second)]);
    const third = await outcome(dial(s, offer));
    expect(third).toEqual({ status: 503 });
    expect(s.logs.filter((l) => l.includes('media.ports_exhausted'))).toHaveLength(1);
    expect(s.received).toHaveLength(2);

    const portsOf = (answer: string, invite: Uint8Array) => [readSdp(answer).streams[0]!.port, readSdp(Buffer.from(invite).toString()).streams[0]!.port].sort();
    const firstPorts = portsOf(a1, s.received[0]!.invite.body);
    expect(portsOf(a2, s.received[1]!.invite.body)).not.toEqual(firstPorts);
    const ended = new Promise((r) => s.trunk.b2bua.once('end', r));
    await first.hangup();
    await ended;
    const fourth = dial(s, offer);
    const a4 = await answered(fourth);
    expect(portsOf(a4, s.received[2]!.invite.body)).toEqual(firstPorts);
    await Promise.all([second.hangup(), fourth.hangup()]);
  });
});
