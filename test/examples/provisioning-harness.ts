import { afterEach } from 'vitest';
import { UserAgent, type OutgoingCall } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

// A started trunk (port 0), its provisioning API over real HTTP, gateways and callers over real UDP.

export const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n';
export const TOKEN = 'prov-token';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});
export function onCleanup(fn: () => Promise<void>): void {
  stops.push(fn);
}

/** A gateway answering every call; it counts the INVITEs and the BYEs it gets. */
export async function gateway() {
  const seen = { invites: 0, byes: 0 };
  const ua = new UserAgent({
    transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })],
    onInvite: (c) => {
      seen.invites++;
      c.on('ended', () => seen.byes++);
      void c.answer({ body: SDP });
    },
  });
  stops.push(() => ua.close());
  return { seen, uri: `sip:127.0.0.1:${ua.layer.transports[0]!.local.port}` };
}

export function trunkConfig(extra: Record<string, unknown> = {}) {
  return validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: TOKEN },
    auth: { secret: 'provisioning-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      'demo.trunk.sipkit.test': { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: ['sip:127.0.0.1:9'] }] },
    },
    cdr: { path: null },
    log: { level: 'error' },
    ...extra,
  });
}

export async function trunk(config = trunkConfig()): Promise<TrunkServer & { api: Api }> {
  const server = await startTrunk(config);
  let stopped = false;
  const stop = server.stop;
  const once = async () => {
    if (stopped) return;
    stopped = true;
    await stop('hangup');
  };
  stops.push(() => once());
  return Object.assign(server, { stop: once, api: api(server.http.port) });
}

export interface ApiResponse {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}
export type Api = (method: string, path: string, body?: unknown, init?: { token?: string | null; raw?: string }) => Promise<ApiResponse>;

export function api(port: number): Api {
  return async (method, path, body, init = {}) => {
    const token = init.token === undefined ? TOKEN : init.token;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  };
}

/** Call sip:<number>@<domain> through the trunk from a fresh caller at 127.0.0.1. */
export async function dial(server: TrunkServer, domain: string, auth?: { username: string; password: string }, number = '+4930123') {
  const ua = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
  stops.push(() => ua.close());
  const call = ua.invite(`sip:${number}@${domain}`, {
    destination: { address: '127.0.0.1', port: server.sip[0]!.port },
    from: `<sip:${auth?.username ?? 'anon'}@${domain}>`,
    body: SDP,
    auth,
  });
  const status = await new Promise<number>((resolve) => {
    call.on('answer', () => resolve(200));
    call.on('failure', (r) => resolve(r.status));
  });
  return { call, status };
}

export function ended(call: OutgoingCall): Promise<unknown> {
  return new Promise((resolve) => call.on('ended', resolve));
}
