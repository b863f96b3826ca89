import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { Registration, UserAgent, type IncomingCall, type RegisteredInfo } from '../../src/dialog/index.js';
import { freePort } from '../support/sipp.js';

// The registration client against Kamailio (Debian's kamailio), a registrar nobody here wrote:
// usrloc + registrar, digest (401) checked by the auth module against a fixed password, and
// INVITEs to the AOR routed by lookup("location") to the registered Contact.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
if (!hasKamailio && process.env.CI) throw new Error('Kamailio is not installed: .ci/run installs kamailio');

const MODULE_DIRS = ['/usr/lib/x86_64-linux-gnu/kamailio/modules/', '/usr/lib/aarch64-linux-gnu/kamailio/modules/', '/usr/lib/kamailio/modules/', '/usr/lib64/kamailio/modules/'];
const DOMAIN = 'sipkit.test';
const PASSWORD = 'kamailio-secret';
// What the registrar grants at most: less than the client asks, so the refresh follows the grant.
const MAX_EXPIRES = 4;

interface Kamailio {
  process: ChildProcess;
  port: number;
  log(): string;
}

async function startKamailio(): Promise<Kamailio> {
  const mpath = MODULE_DIRS.find((d) => {
    try {
      return readFileSync(join(d, 'registrar.so')).length > 0;
    } catch {
      return false;
    }
  });
  if (mpath === undefined) throw new Error(`kamailio is installed but its modules are in none of ${MODULE_DIRS.join(', ')}`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-reg-'));
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(
    cfg,
    `#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:${port}
auto_aliases=no
alias="${DOMAIN}"
mpath="${mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
# Check nonce-counts: a reused nc is refused, so the signed refresh must count on.
modparam("auth", "nonce_count", 1)
modparam("registrar", "min_expires", 2)
modparam("registrar", "default_expires", ${MAX_EXPIRES})
modparam("registrar", "max_expires", ${MAX_EXPIRES})
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("REGISTER")) {
    # Digest with qop=auth (flag 1) against a fixed password: no database.
    if (!pv_www_authenticate("$td", "${PASSWORD}", "0")) { www_challenge("$td", "1"); exit; }
    consume_credentials();
    if (!save("location")) sl_reply_error();
    exit;
  }
  if (has_totag()) {
    if (is_method("ACK") && !t_check_trans()) exit;
    t_relay();
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("INVITE")) {
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
    exit;
  }
  sl_send_reply("405", "Method Not Allowed");
}
`,
  );
  const p = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '64', '-M', '8', '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  const k: Kamailio = { process: p, port, log: () => log };
  // Ready when it answers: an OPTIONS gets its 405 (bounded: 50 tries of 200 ms).
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  let answered = false;
  probe.on('message', () => (answered = true));
  const { port: probePort } = probe.address();
  for (let i = 0; i < 50 && !answered && p.exitCode === null; i++) {
    const branch = `z9hG4bK-probe-${i}`;
    const msg =
      `OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${probePort};branch=${branch}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:probe@127.0.0.1>;tag=p${i}\r\nTo: <sip:${DOMAIN}>\r\nCall-ID: probe-${i}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    probe.send(msg, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
  }
  probe.close();
  if (!answered) {
    p.kill('SIGKILL');
    throw new Error(`kamailio did not start (exit ${p.exitCode}):\n${log}`);
  }
  return k;
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
