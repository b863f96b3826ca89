import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { Registration, UserAgent, type IncomingCall, type RegisteredInfo } from '../../src/dialog/index.js';
import { startKamailioRegistrar, type KamailioRegistrar } from '../support/kamailio-registrar.js';

// The registration client against Kamailio (Debian's kamailio), a registrar nobody here wrote:
// usrloc + registrar, digest (401) checked by the auth module against a fixed password, and
// INVITEs to the AOR routed by lookup("location") to the registered Contact.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
if (!hasKamailio && process.env.CI) throw new Error('Kamailio is not installed: .ci/run installs kamailio');

const DOMAIN = 'sipkit.test';
const PASSWORD = 'kamailio-secret';
// What the registrar grants at most: less than the client asks, so the refresh follows the grant.
const MAX_EXPIRES = 4;

function startKamailio(): Promise<KamailioRegistrar> {
  return startKamailioRegistrar({ host: '127.0.0.1', domain: DOMAIN, password: PASSWORD, maxExpires: MAX_EXPIRES });
}

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** Resolve with the next `event` of `reg`, or reject after `ms` (real time). */
function next<T>(on: (fn: (v: T) => void) => void, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    on((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

describe.skipIf(!hasKamailio)('Registration against Kamailio as the registrar', () => {
  it('registers with digest (401 then 200), refreshes within the grant, is reached by a call routed to its Contact, and unregisters on close', async () => {
    const kamailio = await startKamailio();
    cleanup.push(() => stop(kamailio.process));
    const registrar = { address: '127.0.0.1', port: kamailio.port };

    // Bob: the registered user agent. Incoming calls are answered.
    const statuses: number[] = [];
    const incoming: IncomingCall[] = [];
    const bob = new UserAgent({
      transports: [await UdpTransport.bind({ host: '127.0.0.1' })],
      timers: { T1: 100 },
      contactUser: 'bob',
      trace: (dir, bytes) => {
        const m = /^SIP\/2\.0 (\d{3})/.exec(Buffer.from(bytes.subarray(0, 16)).toString('latin1'));
        if (dir === 'in' && m) statuses.push(Number(m[1]));
      },
      onInvite: (call) => {
        incoming.push(call);
        void call.answer();
      },
    });
    cleanup.push(() => bob.close());
    const reg = new Registration(bob, {
      registrar: `sip:${DOMAIN}`,
      destination: registrar,
      aor: `sip:alice@${DOMAIN}`,
      expires: 60,
      auth: { username: 'alice', password: PASSWORD },
    });
    cleanup.push(() => reg.close());
    const registered: RegisteredInfo[] = [];
    reg.on('registered', (i) => registered.push(i));

    const first = await reg.register();
    expect(statuses.slice(0, 2)).toEqual([401, 200]);
    // Kamailio's max_expires is below what we asked: its grant rules the refresh.
    expect(first.expires).toBeLessThanOrEqual(MAX_EXPIRES);
    expect(first.expires).toBeGreaterThanOrEqual(2);
    const contact = bob.contactFor(registrar);
    expect(first.contacts.some((c) => c.startsWith(contact))).toBe(true);

    // A real refresh, at half the grant (bounded wait: the whole grant plus a margin).
    const refreshed = await next<RegisteredInfo>((fn) => reg.once('registered', fn), (first.expires + 3) * 1000, 'refresh');
    expect(refreshed.expires).toBeGreaterThanOrEqual(2);
    expect(registered.length).toBeGreaterThanOrEqual(2);
    // The refresh went signed with the nonce we hold (nc 2) and was taken without a new challenge.
    expect(statuses.slice(0, 3)).toEqual([401, 200, 200]);
    expect(reg.state).toBe('registered');

    // Carol calls the AOR through Kamailio: lookup("location") sends the INVITE to Bob's Contact.
    const carol = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 }, contactUser: 'carol' });
    cleanup.push(() => carol.close());
    const call = carol.invite(`sip:alice@${DOMAIN}`, { destination: registrar, from: `<sip:carol@${DOMAIN}>` });
    const answer = await next<unknown>((fn) => call.once('answer', fn), 10_000, 'answer');
    expect(answer).toBeDefined();
    expect(incoming).toHaveLength(1);
    expect(incoming[0]!.invite.uri).toBe(contact.slice(1, -1));
    expect(incoming[0]!.invite.to.uri.toString()).toBe(`sip:alice@${DOMAIN}`);
    await call.hangup();

    // close(): Expires 0 removes the binding; the next call to the AOR finds nobody (404).
    const unregistered = next<unknown>((fn) => reg.once('unregistered', fn), 10_000, 'unregistered');
    await reg.close();
    await unregistered;
    expect(reg.state).toBe('closed');
    const after = carol.invite(`sip:alice@${DOMAIN}`, { destination: registrar, from: `<sip:carol@${DOMAIN}>` });
    const failure = await next<{ status: number }>((fn) => after.once('failure', fn), 10_000, 'failure');
    expect(failure.status).toBe(404);
    expect(incoming).toHaveLength(1);
  }, 40_000);
});
