import { describe, expect, it } from 'vitest';
import { B2bua } from '../../src/b2bua/index.js';
import { UserAgent } from '../../src/dialog/index.js';
import { createRequest, SipError } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { RecordingUser } from '../support/tx-harness.js';

function net() {
  const clock = new FakeClock(1_000_000);
  return { clock, net: new TestNetwork({ clock }) };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SipError);
    expect((err as Error).message).toMatch(/already (used|in use) by another/);
    return (err as SipError).code;
  }
  return undefined;
}

describe('one transport, one layer', () => {
  it('a second TransactionLayer on the same transport is refused with TRANSPORT_IN_USE', () => {
    const { clock, net: n } = net();
    const t = n.transport('10.0.0.1', 5060);
    new TransactionLayer({ transports: [t], user: new RecordingUser(), clock });
    expect(codeOf(() => new TransactionLayer({ transports: [t], user: new RecordingUser(), clock }))).toBe('TRANSPORT_IN_USE');
  });

  it('a refused layer takes none of its transports: the free one can still be given to another layer', () => {
    const { clock, net: n } = net();
    const used = n.transport('10.0.0.1', 5060);
    const free = n.transport('10.0.0.1', 5070);
    new TransactionLayer({ transports: [used], user: new RecordingUser(), clock });
    expect(codeOf(() => new TransactionLayer({ transports: [free, used], user: new RecordingUser(), clock }))).toBe('TRANSPORT_IN_USE');
    expect(() => new TransactionLayer({ transports: [free], user: new RecordingUser(), clock })).not.toThrow();
  });

  it('two UserAgents or B2buas given one transport: the second is refused', () => {
    const { clock, net: n } = net();
    const t = n.transport('10.0.0.1', 5060);
    new UserAgent({ transports: [t], clock });
    expect(codeOf(() => new UserAgent({ transports: [t], clock }))).toBe('TRANSPORT_IN_USE');
    expect(codeOf(() => new B2bua({ transports: [t], clock, route: () => [] }))).toBe('TRANSPORT_IN_USE');
  });

  it('the claim is released on close: the transport can then be handed to a new layer', async () => {
    const { clock, net: n } = net();
    const t = n.transport('10.0.0.1', 5060);
    const ua = new UserAgent({ transports: [t], clock });
    await ua.close();
    expect(() => new TransactionLayer({ transports: [t], user: new RecordingUser(), clock })).not.toThrow();
  });

  it('messages reach the first layer and are not lost to a second one', () => {
    const { clock, net: n } = net();
    const t = n.transport('10.0.0.2', 5060);
    const bob = new RecordingUser();
    new TransactionLayer({ transports: [t], user: bob, clock });
    try {
      new TransactionLayer({ transports: [t], user: new RecordingUser(), clock });
    } catch {
      // refused
    }
    const alice = new TransactionLayer({ transports: [n.transport('10.0.0.1', 5060)], user: new RecordingUser(), clock });
    const options = createRequest({ method: 'OPTIONS', uri: 'sip:bob@10.0.0.2', from: '<sip:a@10.0.0.1>', to: '<sip:bob@10.0.0.2>' });
    alice.sendRequest(options, { address: '10.0.0.2', port: 5060 }, { onResponse: () => undefined });
    clock.advance(10);
    expect(bob.requests).toHaveLength(1);
  });
});

