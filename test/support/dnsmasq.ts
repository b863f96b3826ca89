import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { NodeDnsLookup } from '../../src/resolver/index.js';

/** Debian's dnsmasq (package dnsmasq-base), or undefined when it is not installed. */
export const DNSMASQ = ['/usr/sbin/dnsmasq', 'dnsmasq'].find((p) => (p.includes('/') ? existsSync(p) : spawnSync(p, ['--version']).status === 0));

export interface Dnsmasq {
  /** `127.0.0.1:port`, for `servers`. */
  server: string;
  process: ChildProcess;
  log(): string;
  stop(): void;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * dnsmasq on 127.0.0.1 serving only what `records` says (its own flags: `--local=/zone/`,
 * `--naptr-record=…`, `--srv-host=…`, `--host-record=…`, …), no upstream, no /etc/hosts.
 * Resolves once `readyName` answers an A query; a few tries, since the free port could be
 * taken between probing it and dnsmasq binding it.
 */
export async function startDnsmasq(records: string[], readyName: string): Promise<Dnsmasq> {
  let log = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const args = [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--pid-file=',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      ...(process.getuid?.() === 0 ? ['--user=root', '--group=root'] : []),
      ...records,
    ];
    const p = spawn(DNSMASQ!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    log = '';
    p.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-10_000)));
    p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-10_000)));
    const exited = new Promise<boolean>((resolve) => p.once('exit', () => resolve(false)));
    const server = `127.0.0.1:${port}`;
    const probe = new NodeDnsLookup({ servers: [server], timeout: 200, tries: 1 });
    for (let i = 0; i < 50; i++) {
      const ready = await Promise.race([probe.a(readyName).then(() => true, () => undefined), exited]);
      if (ready === false) break;
      if (ready === true) return { server, process: p, log: () => log, stop: () => void p.kill('SIGTERM') };
      await new Promise((r) => setTimeout(r, 50));
    }
    p.kill('SIGKILL');
  }
  throw new Error(`dnsmasq did not start:\n${log}`);
}
