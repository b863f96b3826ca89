import { B2bua, type B2buaOptions, type CallRecord } from '../../src/b2bua/index.js';
import { DigestServer } from '../../src/digest/index.js';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { FakeClock, TestNetwork, type NetworkConditions, type Packet } from '../../src/transport/index.js';

export const CALLER = '10.0.0.1';
export const TRUNK = '10.0.0.5';
export const DEST = '10.0.0.2';
export const DEST2 = '10.0.0.3';
export const TRUNK_URI = 'sip:+15551234567@demo.trunk.sipkit.test';

export const SDP_CALLER = 'v=0\r\no=caller 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\na=sendrecv\r\n';
export const SDP_DEST = 'v=0\r\no=dest 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendrecv\r\n';

export interface Trunk {
  clock: FakeClock;
  net: TestNetwork;
  caller: UserAgent;
  dest: UserAgent;
  dest2: UserAgent;
  b2bua: B2bua;
  /** The digest server behind `authenticate` (and `challenge` with `statelessChallenge`). */
  auth: DigestServer;
  /** Calls arriving at the destinations. */
  atDest: IncomingCall[];
  atDest2: IncomingCall[];
  ended: CallRecord[];
  /** SIP first lines seen on a link, in order ("A" = caller↔trunk, "B" = trunk↔destination). */
  seen(link: 'A' | 'B', filter?: (p: Packet) => boolean): string[];
}

export function trunk(
  options: {
    conditions?: NetworkConditions;
    seed?: number;
    b2bua?: Partial<B2buaOptions>;
    destTrying?: boolean;
    tcp?: boolean;
    onDestInvite?: (c: IncomingCall) => void;
    /** Answer INVITEs without credentials statelessly (B2buaOptions.challenge), as the trunk server does. */
    statelessChallenge?: boolean;
  } = {},
): Trunk {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: options.seed ?? 3, ...options.conditions });
  const atDest: IncomingCall[] = [];
  const atDest2: IncomingCall[] = [];
  const auth = new DigestServer({
    secret: 'trunk-test-secret-0123456789abcdef',
    realm: 'demo.trunk.sipkit.test',
    algorithms: ['SHA-256', 'MD5'],
    lookup: (u) => (u === '1000' ? { password: 'sipkit-demo' } : undefined),
    now: () => clock.now(),
  });
  const b2bua = new B2bua({
    transports: options.tcp ? [net.transport(TRUNK, 5060), net.transport(TRUNK, 5060, { reliable: true })] : [net.transport(TRUNK, 5060)],
    clock,
    authenticate: async (req, source) => {
      const r = await auth.verify(req, { source: source.address.address });
      return r.kind === 'ok' ? { ok: true, identity: r.username } : { ok: false, response: r.response };
    },
    route: () => [{ uri: `sip:+15551234567@${DEST}:5060` }],
    challenge: options.statelessChallenge ? (req, source) => auth.challengeIfNoCredentials(req, { source: source.address.address }) : undefined,
    ...options.b2bua,
  });
  const ended: CallRecord[] = [];
  b2bua.on('end', (r) => ended.push(r));
  const caller = new UserAgent({ transports: [net.transport(CALLER, 5060)], clock, contactUser: 'caller' });
  const dest = new UserAgent({ transports: [net.transport(DEST, 5060)], clock, contactUser: 'dest', onInvite: options.onDestInvite ?? ((c) => atDest.push(c)), tryingAfterMs: options.destTrying === false ? -1 : 0 });
  const dest2 = new UserAgent({ transports: [net.transport(DEST2, 5060)], clock, contactUser: 'dest2', onInvite: (c) => atDest2.push(c), tryingAfterMs: 0 });
  const seen = (link: 'A' | 'B', filter?: (p: Packet) => boolean) => {
    const peer = link === 'A' ? CALLER : DEST;
    return net.log
      .filter((p) => (p.from.address === peer && p.to.address === TRUNK) || (p.from.address === TRUNK && p.to.address === peer))
      .filter((p) => !filter || filter(p))
      .map((p) => (p.from.address === TRUNK ? '<- ' : '-> ') + p.firstLine.replace(/ sip:\S+ SIP\/2\.0$/, '').replace(/^SIP\/2\.0 /, ''));
  };
  return { clock, net, caller, dest, dest2, b2bua, auth, atDest, atDest2, ended, seen };
}

/** Let virtual time and promises run together (auth and media hooks are async). */
export async function run(t: { clock: FakeClock }, ms = 200, step = 5): Promise<void> {
  for (let e = 0; e < ms; e += step) {
    t.clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

export function placeCall(t: Trunk, options: Parameters<UserAgent['invite']>[1] = {}) {
  return t.caller.invite(TRUNK_URI, {
    destination: { address: TRUNK, port: 5060 },
    from: '"Extension 1000" <sip:1000@demo.trunk.sipkit.test>',
    body: SDP_CALLER,
    auth: { username: '1000', password: 'sipkit-demo' },
    reliableProvisionals: 'none',
    ...options,
  });
}
