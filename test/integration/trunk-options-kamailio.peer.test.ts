import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { KAMAILIO_MODULE_DIRS } from '../support/kamailio-registrar.js';

// The trunk answering OPTIONS itself (issue #17), probed by a load balancer nobody here wrote:
// Kamailio's dispatcher module pings every destination of its set with OPTIONS each second. The
// trunk, starting out inactive, is brought up by its answer; a gateway that never answers is
// taken down. The trunk's answer is logged by Kamailio with its Allow/Accept/Supported.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
const mpath = KAMAILIO_MODULE_DIRS.find((d) => existsSync(join(d, 'dispatcher.so')));
const ready = hasKamailio && mpath !== undefined;
if (!ready && process.env.CI) throw new Error('kamailio (with its dispatcher module) is not installed: .ci/run installs kamailio');
if (!ready) console.warn('trunk-options-kamailio.peer.test: skipped (kamailio is not installed)');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

describe.skipIf(!ready)('trunk probed by Kamailio\'s dispatcher (OPTIONS keep-alive of a load balancer)', () => {
  it('the trunk answers the dispatcher\'s OPTIONS with 200 (Allow, Accept, Supported) and is brought up; a silent gateway is taken down', async () => {
    const trunk: TrunkServer = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        auth: { secret: 'trunk-options-kamailio-secret-0123456789' },
        domains: { 'lb.trunk.sipkit.test': { extensions: { '1000': { password: 'pw' } }, routes: [{ prefix: '', targets: ['sip:127.0.0.1:9'] }] } },
        cdr: { path: null },
        log: { level: 'error' },
      }),
    );
    cleanups.push(() => trunk.stop('hangup'));
    const trunkPort = trunk.sip[0]!.port;
    const silent: Socket = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => silent.close());
    const silentPort = silent.address().port;

    const dir = mkdtempSync(join(tmpdir(), 'kamailio-dispatcher-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freeUdpPort();
    // setid destination flags: 9 = inactive + probing (up once it answers), 8 = active + probing.
    writeFileSync(join(dir, 'dispatcher.list'), `1 sip:127.0.0.1:${trunkPort} 9\n1 sip:127.0.0.1:${silentPort} 8\n`);
    writeFileSync(
      join(dir, 'kamailio.cfg'),
      `#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:${port}
mpath="${mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
modparam("tm", "fr_timer", 1000)
modparam("dispatcher", "list_file", "${join(dir, 'dispatcher.list')}")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_from", "sip:lb@127.0.0.1")
request_route {
  sl_send_reply("404", "Not Here");
}
event_route[dispatcher:dst-up] {
  xlog("L_NOTICE", "sipkit-peer: dst-up $ru\\n");
}
event_route[dispatcher:dst-down] {
  xlog("L_NOTICE", "sipkit-peer: dst-down $ru\\n");
}
reply_route {
  if (is_method("OPTIONS")) xlog("L_NOTICE", "sipkit-peer: $rs from $si:$sp allow=[$hdr(Allow)] accept=[$hdr(Accept)] supported=[$hdr(Supported)]\\n");
}
`,
    );
    let log = '';
    const p = spawn('kamailio', ['-f', join(dir, 'kamailio.cfg'), '-DD', '-E', '-m', '64', '-M', '8', '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-50_000)));
    cleanups.push(async () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    });
    const events = () => [...log.matchAll(/sipkit-peer: (dst-(?:up|down)) (\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
    for (let i = 0; i < 200 && events().length < 2 && p.exitCode === null; i++) await sleep(50);
    expect(events().sort(), log.slice(-6000)).toEqual([`dst-down sip:127.0.0.1:${silentPort}`, `dst-up sip:127.0.0.1:${trunkPort}`]);
    const answer = /sipkit-peer: (\d+) from 127\.0\.0\.1:(\d+) allow=\[([^\]]*)\] accept=\[([^\]]*)\] supported=\[([^\]]*)\]/.exec(log);
    expect(answer, log.slice(-6000)).not.toBeNull();
    const [, status, from, allow, accept, supported] = answer!;
    expect([status, Number(from)]).toEqual(['200', trunkPort]);
    expect(allow).toMatch(/INVITE/);
    expect(allow).toMatch(/OPTIONS/);
    expect(accept).toMatch(/application\/sdp/);
    expect(supported).toMatch(/100rel/);
  }, 30_000);
});
