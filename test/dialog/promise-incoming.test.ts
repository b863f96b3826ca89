import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallFailedError, type IncomingCall } from '../../src/dialog/index.js';
import { parseMessage, SipError } from '../../src/parser/index.js';
import { BOB, drive, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

async function rejection(promise: Promise<unknown>): Promise<SipError> {
  try {
    await promise;
  } catch (err) {
    return err as SipError;
  }
  throw new Error('expected a rejection');
}

async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setImmediate(r));
  return settled;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('async onInvite: a failure becomes a 500', () => {
  it('a rejected promise before any final response: 500 to the caller, the error to the error event', async () => {
    const boom = new Error('database down');
    const p = uaPair({
      bob: {
        onInvite: async (c: IncomingCall) => {
          c.provisional(180);
          await Promise.resolve();
          throw boom;
        },
      },
    });
    const errors: Array<[unknown, IncomingCall]> = [];
    p.bob.on('error', (err, call) => errors.push([err, call]));
    const pending = p.alice.call(BOB, { body: SDP_A });
    const err = await rejection(drive(p, pending, 1000));
    expect(err).toBeInstanceOf(CallFailedError);
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 500, by: 'remote' });
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe(boom);
    expect(errors[0]![1].cause).toMatchObject({ by: 'local', status: 500 });
    // The 500 says nothing of the application's error.
    expect(p.net.packets('SIP/2.0 500').map((x) => x.bytes.toString())).toEqual([expect.not.stringContaining('database')]);
  });

  it('a synchronous throw is handled the same way', async () => {
    const p = uaPair({
      bob: {
        onInvite: () => {
          throw new Error('bad handler');
        },
      },
    });
    const errors: unknown[] = [];
    p.bob.on('error', (err) => errors.push(err));
    const err = await rejection(drive(p, p.alice.call(BOB), 1000));
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 500 });
    expect(errors).toEqual([expect.objectContaining({ message: 'bad handler' })]);
  });

  it('a rejection after the call was answered (or refused) sends nothing more: just the event', async () => {
    const p = uaPair({
      bob: {
        onInvite: async (c: IncomingCall) => {
          await c.answer({ body: SDP_B });
          throw new Error('after the answer');
        },
      },
    });
    const errors: unknown[] = [];
    p.bob.on('error', (err) => errors.push(err));
    const call = await drive(p, p.alice.call(BOB, { body: SDP_A }), 1000);
    settle(p);
    expect(call.state).toBe('answered');
    expect(errors).toHaveLength(1);
    expect(p.net.packets('SIP/2.0 500')).toHaveLength(0);
    expect(p.net.packets('BYE')).toHaveLength(0);
  });

  it('without an error listener the error is logged to console.error', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const p = uaPair({ bob: { onInvite: () => Promise.reject(new Error('unheard')) } });
    const err = await rejection(drive(p, p.alice.call(BOB), 1000));
    expect(err).toMatchObject({ status: 500 });
    expect(logged).toHaveBeenCalledWith(expect.stringContaining('onInvite'), expect.objectContaining({ message: 'unheard' }));
  });

  it('an onInvite returning a value that is not a promise is fine (push into an array)', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB);
    settle(p);
    expect(p.incoming).toHaveLength(1);
    await p.incoming[0]!.answer();
    settle(p);
    expect((await pending).state).toBe('answered');
  });
});

describe('ua.accept(): pulling incoming calls', () => {
  it('resolves with the next call; answer it and await the outgoing side', async () => {
    const p = uaPair({ bob: { onInvite: undefined } });
    const accepting = p.bob.accept();
    expect(await isSettled(accepting)).toBe(false);
    const pending = p.alice.call(BOB, { body: SDP_A });
    settle(p);
    const inc = await accepting;
    expect(inc.invite.bodyText).toBe(SDP_A);
    await inc.answer({ body: SDP_B });
    settle(p);
    const call = await pending;
    expect(call.state).toBe('answered');
    void call.hangup();
    settle(p);
    expect(await inc.whenEnded).toMatchObject({ by: 'remote', method: 'BYE' });
  });

  it('calls arriving between accept()s wait in order; one CANCELled meanwhile is skipped', async () => {
    const p = uaPair({ bob: { onInvite: undefined } });
    const firstAccept = p.bob.accept();
    const from = (c: IncomingCall) => c.invite.from.uri.toString();
    void p.alice.call(BOB, { from: '<sip:a@10.0.0.1>' }).catch(() => undefined);
    settle(p);
    expect(from(await firstAccept)).toBe('sip:a@10.0.0.1');
    const ac = new AbortController();
    const b = p.alice.call(BOB, { from: '<sip:b@10.0.0.1>', signal: ac.signal });
    void p.alice.call(BOB, { from: '<sip:c@10.0.0.1>' }).catch(() => undefined);
    settle(p, 300); // both wait; the transaction layer's 100 Trying lets the CANCEL go
    ac.abort();
    expect(await rejection(b)).toMatchObject({ code: 'CALL_CANCELLED' });
    settle(p);
    expect(p.net.packets('SIP/2.0 487')).toHaveLength(1);
    expect(from(await p.bob.accept())).toBe('sip:c@10.0.0.1');
    expect(await isSettled(p.bob.accept())).toBe(false);
  });

  it('no accept() was ever made: a call is refused with 480, as before', async () => {
    const p = uaPair({ bob: { onInvite: undefined } });
    const err = await rejection(drive(p, p.alice.call(BOB), 1000));
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 480 });
  });

  it('a full backlog refuses with 486; an aborted accept() rejects with ABORTED', async () => {
    const p = uaPair({ bob: { onInvite: undefined, acceptBacklog: 1 } });
    const ac = new AbortController();
    const waiting = p.bob.accept({ signal: ac.signal });
    ac.abort();
    expect(await rejection(waiting)).toMatchObject({ code: 'ABORTED' });
    const a = p.alice.call(BOB);
    const b = p.alice.call(BOB);
    void a.catch(() => undefined);
    const err = await rejection(drive(p, b, 1000));
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 486 });
    expect(await isSettled(a)).toBe(false);
    const kept = await p.bob.accept();
    expect(kept.ended).toBe(false);
    const refused = p.net.packets('SIP/2.0 486').map((x) => parseMessage(x.bytes).callId);
    expect(refused).toHaveLength(1);
    expect(kept.callId).not.toBe(refused[0]);
  });

  it('close() rejects a waiting accept() with CLOSED, and any later one', async () => {
    const p = uaPair({ bob: { onInvite: undefined } });
    const waiting = rejection(p.bob.accept());
    await drive(p, p.bob.close());
    expect(await waiting).toMatchObject({ code: 'CLOSED' });
    expect(await rejection(p.bob.accept())).toMatchObject({ code: 'CLOSED' });
  });

  it('an already aborted signal rejects at once with ABORTED', async () => {
    const p = uaPair({ bob: { onInvite: undefined } });
    const err = await rejection(p.bob.accept({ signal: AbortSignal.abort() }));
    expect(err).toBeInstanceOf(SipError);
    expect(err.code).toBe('ABORTED');
  });

  it('with onInvite (which takes every call) accept() rejects with BAD_OPTION', async () => {
    const p = uaPair();
    expect(await rejection(p.bob.accept())).toMatchObject({ code: 'BAD_OPTION' });
  });
});
