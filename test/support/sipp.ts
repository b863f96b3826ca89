import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
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

/** Start SIPp (Debian's sip-tester) in the background, killed after `timeoutMs`; `done` has its exit code and output tail. */
export function startSipp(args: string[], timeoutMs = 30_000): { process: ChildProcess; done: Promise<SippRun> } {
  const p = spawn('sipp', args, { cwd: mkdtempSync(join(tmpdir(), 'sipp-')), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  p.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise<SippRun>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    }),
  );
  return { process: p, done };
}

/** Run SIPp to completion. */
export function sipp(args: string[], timeoutMs = 30_000): Promise<SippRun> {
  return startSipp(args, timeoutMs).done;
}

/** SIPp as a gateway (a UAS scenario of test/sipp) on 127.0.0.1:`port` for `calls` calls. */
export function sippGateway(port: number, scenario: string, calls: number): { process: ChildProcess; done: Promise<SippRun> } {
  return startSipp(['-sf', join(SIPP_DIR, scenario), '-i', '127.0.0.1', '-p', String(port), '-m', String(calls), '-timeout', '50s', '-timeout_error'], 60_000);
}

/**
 * Whether a UDP socket is bound to `port`, read from /proc/net/udp (Linux): undefined elsewhere.
 * Read, not probed by binding the port: a probe holding the port for a moment is exactly when
 * SIPp may try to bind it, and a SIPp that cannot bind exits (a flaky "nothing listens").
 */
function udpPortBound(port: number): boolean | undefined {
  let table: string;
  try {
    table = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return undefined;
  }
  const suffix = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) === true);
}

/**
 * Wait until a UDP port on 127.0.0.1 has a listener (SIPp binds a moment after it starts; on a
 * loaded CI machine, seconds after). With `owner` (the SIPp run meant to listen there), a SIPp
 * that exited first fails at once with its output, not after the bound.
 */
export async function udpListening(port: number, owner?: { done: Promise<SippRun> }): Promise<void> {
  let exited: SippRun | undefined;
  void owner?.done.then((r) => (exited = r));
  for (let i = 0; i < 300; i++) {
    if (exited !== undefined) throw new Error(`SIPp meant to listen on ${port} exited (code ${exited.code}) first:\n${exited.out.slice(-3000)}`);
    const bound =
      udpPortBound(port) ??
      // Not Linux: probe by binding (racy, see above).
      (await new Promise<boolean>((resolve) => {
        const s = createSocket('udp4');
        s.once('error', () => resolve(true));
        s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
      }));
    if (bound) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}
