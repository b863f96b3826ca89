// Calls through a real trunk (startTrunk) on loopback UDP, placed and answered by sipkit user
// agents: the setting the metrics, capture and page tests share.
import { UserAgent, type OutgoingCall } from 'sipkit/dialog';
import { UdpTransport } from 'sipkit/transport';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

export const DOMAIN = 'pbx.trunk.test';
export const TOKEN = 'page-test-token';
const OFFER = 'v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=gw 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n';

export interface TrunkSetup {
  trunk: TrunkServer;
  caller: UserAgent;
  gateway: UserAgent;
  /** Close everything (the trunk with a hangup). */
  stop(): Promise<void>;
}

/** A trunk routing every number of DOMAIN to a sipkit gateway that rings and answers; extension 1000 / secret-1000. */
export async function trunkWithGateway(extra: Record<string, unknown> = {}, routeExtra: Record<string, unknown> = {}): Promise<TrunkSetup> {
  const gateway = new UserAgent({
    transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })],
    onInvite: (c) => {
      c.provisional(180);
      if (!c.invite.requestUri.toString().includes('+404')) setTimeout(() => void c.answer({ body: ANSWER }), 20);
      else void c.reject(404);
    },
  });
  const gw = gateway.layer.transports[0]!.local;
  const trunk = await startTrunk(
    validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      http: { host: '127.0.0.1', port: 0, token: TOKEN },
      auth: { secret: 'page-test-secret-0123456789abcdef' },
      domains: { [DOMAIN]: { extensions: { '1000': { password: 'secret-1000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.port}`], ...routeExtra }] } },
      cdr: { path: null },
      log: { level: 'error' },
      ...extra,
    }),
  );
  const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
  return {
    trunk,
    caller,
    gateway,
    async stop() {
      await trunk.stop('hangup');
      await caller.close();
      await gateway.close();
    },
  };
}

export interface PlacedCall {
  call: OutgoingCall;
  answered: Promise<void>;
  /** Resolves with the final failure status, if the call fails. */
  failed: Promise<number>;
}

/** Dial `number` in DOMAIN through the trunk, authenticating as 1000. */
export function dial(s: TrunkSetup, number: string, password = 'secret-1000'): PlacedCall {
  let onAnswer: () => void = () => undefined;
  let onFail: (s: number) => void = () => undefined;
  const answered = new Promise<void>((r) => (onAnswer = r));
  const failed = new Promise<number>((r) => (onFail = r));
  const sip = s.trunk.sip[0]!;
  const call = s.caller.invite(`sip:${number}@${DOMAIN}`, {
    destination: { address: sip.address, port: sip.port },
    from: `<sip:1000@${DOMAIN}>`,
    body: OFFER,
    auth: { username: '1000', password },
    on: { answer: () => onAnswer(), failure: (r) => onFail(r.status) },
  });
  return { call, answered, failed };
}

/** GET on the trunk's HTTP API (with the token unless told otherwise). */
export async function http(s: TrunkSetup, path: string, token: string | null = TOKEN): Promise<{ status: number; type: string; text: string; json: any }> {
  const res = await fetch(`http://127.0.0.1:${s.trunk.http.port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, type, text, json: type.startsWith('application/json') ? JSON.parse(text) : undefined };
}

/** Poll `check` every 20 ms until it returns something truthy; at most `tries` times. */
export async function until<T>(check: () => Promise<T> | T, what: string, tries = 250): Promise<NonNullable<T>> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
