import { createResponse, type SipRequest } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import type { ServerTransaction } from '../../src/transaction/index.js';
import { Registration, UserAgent, type RegisteredInfo, type RegistrationFailure, type RegistrationOptions } from '../../src/dialog/index.js';

export type Answer = (req: SipRequest, tx: ServerTransaction) => void;

/** A registrar answer: 200 echoing the Contact with `;expires=<param>` (when given) and an Expires header (when given). */
export function ok(param?: number, header?: number, extra: Record<string, string> = {}): Answer {
  return (req, tx) => {
    const contacts = req.getAll('contact').map((c) => (param === undefined ? c : c.replace(/;expires=\d+/, '') + `;expires=${param}`));
    const headers: Record<string, string | string[]> = { ...extra };
    if (contacts.length > 0) headers['Contact'] = contacts;
    if (header !== undefined) headers['Expires'] = String(header);
    tx.respond(createResponse(req, 200, { headers }));
  };
}

export interface RegHarness {
  clock: FakeClock;
  net: TestNetwork;
  ua: UserAgent;
  /** The registrar's user agent. */
  registrar: UserAgent;
  reg: Registration;
  /** What the registrar received (REGISTERs), in order. */
  requests: SipRequest[];
  /** [clock time, first line] of every packet sent. */
  sent: Array<[number, string, Uint8Array]>;
  registered: RegisteredInfo[];
  failed: RegistrationFailure[];
  unregistered: number;
  /** Replace how the registrar answers. */
  answer: Answer;
  /** Let `ms` of virtual time pass, flushing promise jobs every step. */
  run(ms: number, step?: number): Promise<void>;
  /** Clock time of the REGISTERs sent (including authenticated resends). */
  registerTimes(): number[];
}

/** Alice's UA (10.0.0.1) registering at a registrar UA (10.0.0.9) whose answers the test scripts. */
export function regHarness(options: { reliable?: boolean; answer?: Answer; reg?: Partial<RegistrationOptions> } = {}): RegHarness {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock });
  const reliable = options.reliable ?? false;
  const sent: Array<[number, string, Uint8Array]> = [];
  net.filter = (p) => {
    sent.push([clock.now(), p.firstLine, p.bytes]);
    return undefined;
  };
  const h = {
    clock,
    net,
    requests: [] as SipRequest[],
    sent,
    registered: [] as RegisteredInfo[],
    failed: [] as RegistrationFailure[],
    unregistered: 0,
    answer: options.answer ?? ok(undefined, 3600),
  } as RegHarness;
  h.registrar = new UserAgent({
    transports: [net.transport('10.0.0.9', 5060, { reliable })],
    clock,
    onRequest: (req, tx) => {
      h.requests.push(req);
      h.answer(req, tx);
    },
  });
  h.ua = new UserAgent({ transports: [net.transport('10.0.0.1', 5060, { reliable })], clock, contactUser: 'alice' });
  h.reg = new Registration(h.ua, {
    registrar: reliable ? 'sip:10.0.0.9;transport=tcp' : 'sip:10.0.0.9',
    aor: 'sip:alice@example.test',
    random: () => 0.5,
    ...options.reg,
  });
  h.reg.on('registered', (i) => h.registered.push(i));
  h.reg.on('failed', (f) => h.failed.push(f));
  h.reg.on('unregistered', () => h.unregistered++);
  h.run = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await new Promise((r) => setImmediate(r));
    }
  };
  h.registerTimes = () => sent.filter(([, l]) => l.startsWith('REGISTER')).map(([t]) => t);
  return h;
}

/** Await a promise while virtual time runs (bounded). */
export async function driveReg<T>(h: RegHarness, p: Promise<T>, maxMs = 120_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t < maxMs && !done; t += 10) await h.run(10);
  return p;
}
