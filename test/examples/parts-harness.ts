// A plain B2BUA on sipkit's in-memory network, built only from sipkit's public names — the
// setting each trunk-server part is documented to work in on its own.
import { B2bua, type B2buaOptions, type CallRecord } from 'sipkit/b2bua';
import { UserAgent, type IncomingCall, type InviteOptions, type OutgoingCall } from 'sipkit/dialog';
import type { SipResponse } from 'sipkit/parser';
import { FakeClock, TestNetwork } from 'sipkit/testing';

export const CALLER = '10.0.0.1';
export const TRUNK = '10.0.0.5';
export const GATEWAY = '10.0.0.2';

export const OFFER = 'v=0\r\no=caller 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=gw 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';

export interface Setup {
  clock: FakeClock;
  net: TestNetwork;
  b2bua: B2bua;
  caller: UserAgent;
  /** Calls that reached the gateway (it answers each with 200 unless told otherwise). */
  atGateway: IncomingCall[];
  ended: CallRecord[];
}

export function setup(b2bua: Omit<B2buaOptions, 'transports' | 'clock'>, options: { answer?: boolean } = {}): Setup {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: 7, record: true });
  const atGateway: IncomingCall[] = [];
  const b = new B2bua({ transports: [net.transport(TRUNK, 5060)], clock, ...b2bua });
  const ended: CallRecord[] = [];
  b.on('end', (r) => ended.push(r));
  new UserAgent({
    transports: [net.transport(GATEWAY, 5060)],
    clock,
    onInvite: (c) => {
      atGateway.push(c);
      if (options.answer !== false) void c.answer({ body: ANSWER });
    },
  });
  const caller = new UserAgent({ transports: [net.transport(CALLER, 5060)], clock });
  return { clock, net, b2bua: b, caller, atGateway, ended };
}

/** Let virtual time and promises run together (auth and media hooks are async). Bounded: ms/step turns. */
export async function run(s: { clock: FakeClock }, ms = 300, step = 5): Promise<void> {
  for (let e = 0; e < ms; e += step) {
    s.clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

export interface Dialled {
  call: OutgoingCall;
  /** Final statuses the caller got (a 407 that was answered with credentials is not final to it). */
  failures: number[];
  answered: boolean;
  /** Every response the caller saw, in order. */
  statuses: number[];
}

export function dial(s: Setup, uri: string, options: InviteOptions = {}): Dialled {
  const d: Dialled = { call: undefined!, failures: [], answered: false, statuses: [] };
  d.call = s.caller.invite(uri, {
    destination: { address: TRUNK, port: 5060 },
    from: '<sip:1000@pbx.example.test>',
    body: OFFER,
    reliableProvisionals: 'none',
    ...options,
    on: {
      failure: (r: SipResponse) => d.failures.push(r.status),
      answer: () => (d.answered = true),
      ...options.on,
    },
  });
  return d;
}

/** Every response status the trunk sent to the caller, in order. */
export function statusesTo(s: Setup, address = CALLER): number[] {
  return s.net.log.filter((p) => p.from.address === TRUNK && p.to.address === address && p.firstLine.startsWith('SIP/2.0 ')).map((p) => Number(p.firstLine.split(' ')[1]));
}
