import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's linphone-cli (liblinphone 5.x: TLS, SHA-256 digest). */
export const hasLinphonec = spawnSync('linphonec', ['-v'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

export interface Linphonec {
  process: ChildProcess;
  /** Type a command at its prompt (`call …`, `terminate`, `quit`). */
  command(line: string): void;
  /** Its console (stdout and stderr). */
  output(): string;
  /** Its log file (`-d 6`: SIP messages as sent and received). */
  log(): string;
  stop(): Promise<void>;
}

export interface LinphonecAccount {
  /** `sip:1000@domain`: From of its calls. */
  identity: string;
  username: string;
  password: string;
  realm: string;
  /** Where every request goes first (the outbound proxy, its Route), e.g. `<sip:127.0.0.1:5061;transport=tls>`. */
  proxy: string;
}

/**
 * linphonec (nobody here wrote it) in a temp HOME with an rc file of its own: no sound card (a
 * file player stands in), no UDP/TCP listener, TLS on a random port, the server's certificate
 * verified against `caFile` (chain, and its name against the proxy's host), one account that
 * never REGISTERs, used for calls (digest answered with its auth_info). Driven over stdin.
 */
export function startLinphonec(options: { caFile: string; account: LinphonecAccount }): Linphonec {
  const home = mkdtempSync(join(tmpdir(), 'linphonec-'));
  mkdirSync(join(home, '.local', 'share', 'linphone'), { recursive: true });
  const rc = join(home, 'linphonerc');
  const logFile = join(home, 'linphonec.log');
  const { account } = options;
  writeFileSync(
    rc,
    `[sip]
sip_port=-1
sip_tcp_port=-1
sip_tls_port=-1
default_proxy=0
root_ca=${options.caFile}
verify_server_certs=1
verify_server_cn=1
ipv6_enabled=0
use_ipv6=0
register_only_when_network_is_up=0
guess_hostname=1
inc_timeout=30
media_encryption=none

[auth_info_0]
username=${account.username}
userid=${account.username}
passwd=${account.password}
realm=${account.realm}

[proxy_0]
reg_proxy=${account.proxy}
reg_route=${account.proxy}
reg_identity=${account.identity}
reg_sendregister=0
publish=0
quality_reporting_enabled=0

[rtp]
audio_rtp_port=0
video_rtp_port=0

[sound]
playback_dev_id=
capture_dev_id=
ringer_dev_id=

[video]
capture=0
display=0
`,
  );
  const p = spawn('linphonec', ['-c', rc, '-d', '6', '-l', logFile], {
    cwd: home,
    env: { ...process.env, HOME: home, XDG_DATA_HOME: join(home, '.local', 'share'), XDG_CONFIG_HOME: join(home, '.config') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-50_000)));
  p.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-50_000)));
  p.stdin!.on('error', () => undefined);
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    process: p,
    command: (line) => void p.stdin!.write(`${line}\n`),
    output: () => out,
    log: readLog,
    async stop() {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.stdin!.write('quit\n');
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
