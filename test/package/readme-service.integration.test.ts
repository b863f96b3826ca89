import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { B2bua, CallRecord } from 'sipkit/b2bua';
import { UserAgent, type IncomingCall, type OutgoingCall } from 'sipkit/dialog';
import { UdpTransport } from 'sipkit/transport';
import { tsBlocks } from './readme-blocks.js';

// The README's "Using sipkit in your service" examples, run as written over real UDP sockets
// on 127.0.0.1: only the fixed ports become ephemeral ones and the outgoing call is pointed at
// the B2BUA example (its domain and password) instead of `npm start`'s demo trunk.

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = path.dirname(fileURLToPath(import.meta.url));
const service = tsBlocks(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).filter((b) => b.section === 'Using sipkit in your service');
const outgoingExample = service.find((b) => b.code.includes('ua.invite('))!;
const b2buaExample = service.find((b) => b.code.includes('new B2bua('))!;

const written: string[] = [];
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  for (const f of written.splice(0)) fs.rmSync(f, { force: true });
});

/** Load README code as a module (through vitest, so `sipkit/*` are the sources), replacing `edits` first. */
async function load<T>(code: string, edits: Array<[string | RegExp, string]>, exported: string): Promise<T> {
  let text = code;
  for (const [from, to] of edits) {
    const next = text.replace(from, to);
    expect(next, `README example no longer contains ${String(from)}`).not.toBe(text);
    text = next;
  }
  const file = path.join(here, `.readme-run-${process.pid}-${written.length}.ts`);
  fs.writeFileSync(file, `${text}\nexport { ${exported} };\n`);
  written.push(file);
  return (await import(/* @vite-ignore */ file)) as T;
}

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('README service examples, run', () => {
  it('the B2BUA example challenges, verifies and bridges; the outgoing-call example authenticates through it', async () => {
    // The gateway the B2BUA routes to: answers every call.
    const calleeTransport = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const answered: IncomingCall[] = [];
    const callee = new UserAgent({
      transports: [calleeTransport],
      onInvite: (c) => {
        answered.push(c);
        void c.answer({ body: 'v=0\r\n', contentType: 'application/sdp' });
      },
    });
    closers.push(() => callee.close());

    const { b2bua } = await load<{ b2bua: B2bua }>(
      b2buaExample.code,
      [
        ['port: 5060', 'port: 0'],
        ['127.0.0.1:5080', `127.0.0.1:${calleeTransport.local.port}`],
      ],
      'b2bua',
    );
    closers.push(() => b2bua.close());
    const ended: CallRecord[] = [];
    b2bua.on('end', (r) => ended.push(r));
    const b2buaPort = b2bua.ua.layer.transports[0]!.local.port;

    // A wrong password gets no further than the authenticate hook.
    const intruderUa = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
    closers.push(() => intruderUa.close());
    const failures: number[] = [];
    intruderUa.invite('sip:+15551234567@trunk.example.com', {
      destination: { address: '127.0.0.1', port: b2buaPort },
      auth: { username: '1000', password: 'wrong' },
      body: 'v=0\r\n',
      on: { failure: (res) => failures.push(res.status) },
    });
    await until('the intruder refused', () => failures.length > 0);
    expect(failures).toEqual([407]);
    expect(answered).toHaveLength(0);

    // The outgoing-call example, pointed at the B2BUA example.
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const { call } = await load<{ call: OutgoingCall }>(
        outgoingExample.code,
        [
          ['demo.trunk.sipkit.test', 'trunk.example.com'],
          ["password: 'sipkit-demo'", "password: 'change-me'"],
          ['port: 5060', `port: ${b2buaPort}`],
          ['10_000', '200'],
        ],
        'call',
      );
      await until('the call to end', () => call.state === 'ended' && ended.length === 1);
      expect(answered).toHaveLength(1);
      expect(answered[0]!.invite.requestUri.toString()).toBe(`sip:+15551234567@127.0.0.1:${calleeTransport.local.port}`);
      expect(log.mock.calls.map((c) => String(c[0]))).toEqual(expect.arrayContaining(['answered', 'ended by']));
      expect(ended[0]).toMatchObject({ identity: '1000', state: 'hangup', hangup: { by: 'caller' } });
      expect(log.mock.calls.some((c) => c[0] === ended[0]!.id)).toBe(true);
    } finally {
      log.mockRestore();
    }
  });
});
