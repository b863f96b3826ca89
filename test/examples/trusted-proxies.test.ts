import { describe, expect, it } from 'vitest';
import { createRequest } from '../../src/parser/index.js';
import type { MessageSource } from '../../src/transaction/index.js';
import { AddressMatcher } from '../../examples/trunk-server/cidr.js';
import { ConfigError, defaultConfig, validateConfig } from '../../examples/trunk-server/config.js';
import { callerSource, createCallerSource } from '../../examples/trunk-server/trusted-proxies.js';

// Issue #18: behind a trusted front proxy, the caller is the Via below the front's own.

const FRONT = { address: '127.0.0.1', port: 5060 };
const FRONT_VIA = 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfront1';
const trusted = new AddressMatcher(['127.0.0.1/32', '2001:db8::/32']);

const invite = (...via: string[]) =>
  createRequest({ method: 'INVITE', uri: 'sip:+4930123@acme.test', from: '<sip:2000@acme.test>', to: '<sip:+4930123@acme.test>', via });

describe('callerSource: the caller behind a trusted front', () => {
  it('takes the received address and the filled-in rport of the Via below the top', () => {
    const req = invite(FRONT_VIA, 'SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKc1;received=203.0.113.7;rport=40111');
    expect(callerSource(req, FRONT, trusted)).toEqual({ address: '203.0.113.7', port: 40111 });
  });

  it('without received, an IP sent-by is the address; the port is sent-by\'s, else 5060 (an empty rport is no port)', () => {
    expect(callerSource(invite(FRONT_VIA, 'SIP/2.0/UDP 198.51.100.4:5070;branch=z9hG4bKc2;rport'), FRONT, trusted)).toEqual({ address: '198.51.100.4', port: 5070 });
    expect(callerSource(invite(FRONT_VIA, 'SIP/2.0/UDP 198.51.100.4;branch=z9hG4bKc3'), FRONT, trusted)).toEqual({ address: '198.51.100.4', port: 5060 });
    expect(callerSource(invite(FRONT_VIA, 'SIP/2.0/UDP [2001:db8::7]:5080;branch=z9hG4bKc4'), FRONT, trusted)).toEqual({ address: '2001:db8::7', port: 5080 });
    expect(callerSource(invite(FRONT_VIA, 'SIP/2.0/UDP h.example.test;branch=z9hG4bKc5;received=2001:db8::8'), FRONT, trusted)).toEqual({ address: '2001:db8::8', port: 5060 });
  });

  it('a host name without received keeps the packet source and says which sent-by it was', () => {
    const named: string[] = [];
    const req = invite(FRONT_VIA, 'SIP/2.0/UDP pbx.example.test:5062;branch=z9hG4bKc6');
    expect(callerSource(req, FRONT, trusted, (s) => named.push(s))).toBe(FRONT);
    expect(named).toEqual(['pbx.example.test:5062']);
  });

  it('one Via only: the packet source (the request came from the front itself)', () => {
    expect(callerSource(invite(FRONT_VIA), FRONT, trusted)).toBe(FRONT);
  });

  it('a packet source outside the trusted list is kept, whatever Vias the sender added', () => {
    const spoof = invite('SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bKs1', 'SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKs2;received=203.0.113.7');
    const attacker = { address: '192.0.2.66', port: 5060 };
    expect(callerSource(spoof, attacker, trusted)).toBe(attacker);
    expect(callerSource(spoof, { address: '127.0.0.2', port: 5060 }, trusted)).toEqual({ address: '127.0.0.2', port: 5060 });
    expect(callerSource(spoof, attacker, new AddressMatcher([]))).toBe(attacker);
  });

  it('a malformed Via below keeps the packet source', () => {
    const req = createRequest({ method: 'INVITE', uri: 'sip:1@acme.test', from: '<sip:2000@acme.test>', to: '<sip:1@acme.test>', via: FRONT_VIA });
    req.append('Via', 'garbage');
    expect(callerSource(req, FRONT, trusted)).toBe(FRONT);
  });
});

describe('createCallerSource: as the trunk wires it', () => {
  const source = (address: string): MessageSource => ({ transport: {} as MessageSource['transport'], address: { address, port: 5060 } });

  it('no trusted proxies: the packet source object itself, Vias or not', () => {
    const c = createCallerSource([]);
    const s = source('127.0.0.1');
    const req = invite(FRONT_VIA, 'SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKc7;received=203.0.113.7');
    expect(c.of(req, s)).toBe(s);
    expect(c.address(req, s)).toBe(s.address);
  });

  it('a trusted front: the same transport, the caller\'s address; a host name is logged once', () => {
    const logged: unknown[] = [];
    const c = createCallerSource(['127.0.0.0/8'], (level, event, fields) => logged.push([level, event, fields]));
    const s = source('127.0.0.1');
    const of = c.of(invite(FRONT_VIA, 'SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKc8;received=203.0.113.7;rport=1234'), s);
    expect(of.transport).toBe(s.transport);
    expect(of.address).toEqual({ address: '203.0.113.7', port: 1234 });
    const named = invite(FRONT_VIA, 'SIP/2.0/UDP pbx.example.test;branch=z9hG4bKc9');
    expect(c.of(named, s)).toBe(s);
    expect(c.of(named, s)).toBe(s);
    expect(logged).toEqual([['warn', 'proxy.via_host_name', expect.objectContaining({ sentBy: 'pbx.example.test' })]]);
  });
});

describe('config: sip.trustedProxies', () => {
  function fieldOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) return err.field;
      throw err;
    }
    throw new Error('no ConfigError');
  }

  it('defaults to none; takes IPv4/IPv6 CIDRs and bare addresses, with or without sip.listen', () => {
    expect(defaultConfig().sip.trustedProxies).toEqual([]);
    expect(validateConfig({}).sip.trustedProxies).toEqual([]);
    const c = validateConfig({ sip: { trustedProxies: ['127.0.0.1/32', '10.1.0.0/16', '2001:db8::1'] } });
    expect(c.sip.trustedProxies).toEqual(['127.0.0.1/32', '10.1.0.0/16', '2001:db8::1']);
    expect(c.sip.listen).toEqual(defaultConfig().sip.listen);
    const l = validateConfig({ sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], trustedProxies: ['127.0.0.1'] } });
    expect(l.sip).toEqual({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], trustedProxies: ['127.0.0.1'] });
  });

  it('names the field of a bad CIDR or a list that is not one', () => {
    expect(fieldOf(() => validateConfig({ sip: { trustedProxies: ['127.0.0.1/32', '10.0.0.1/8'] } }))).toBe('sip.trustedProxies[1]');
    expect(fieldOf(() => validateConfig({ sip: { trustedProxies: ['2001:db8::/129'] } }))).toBe('sip.trustedProxies[0]');
    expect(fieldOf(() => validateConfig({ sip: { trustedProxies: ['front.example.test'] } }))).toBe('sip.trustedProxies[0]');
    expect(fieldOf(() => validateConfig({ sip: { trustedProxies: '127.0.0.1' } }))).toBe('sip.trustedProxies');
    expect(fieldOf(() => validateConfig({ sip: {} }))).toBe('sip.listen');
  });
});
