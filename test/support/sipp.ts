import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The SIPp scenarios (test/sipp). */
export const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');

/** A UDP port free on 127.0.0.1 right now (for a peer that must be told its port). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export interface SippRun {
  code: number | null;
  out: string;
}

/** Run SIPp (Debian's sip-tester) to completion, killed after `timeoutMs`; the tail of its output is kept. */
export function sipp(args: string[], timeoutMs = 30_000): Promise<SippRun> {
  return new Promise((resolve) => {
    const p = spawn('sipp', args, { cwd: mkdtempSync(join(tmpdir(), 'sipp-')), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    p.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}
