import { describe, expect, it } from 'vitest';
import { Dialog } from '../../src/dialog/index.js';
import { createRequest, createResponse, parseMessage, type SipRequest } from '../../src/parser/index.js';

function invite(): SipRequest {
  return createRequest({
    method: 'INVITE',
    uri: 'sip:bob@biloxi.example.com',
    from: '"Alice" <sip:alice@atlanta.example.com>',
    to: '<sip:bob@biloxi.example.com>',
    callId: 'dlg-1',
    cseq: 10,
    via: 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa',
    contact: '<sip:alice@192.0.2.1>',
  });
}

describe('Dialog (RFC 3261 §12)', () => {
  it('UAC: route set is the reversed Record-Route; requests loose-route with lr', () => {
    const inv = invite();
    const res = createResponse(inv, 200, { toTag: 'b' });
    res.set('Record-Route', '<sip:p2.example.com;lr>');
    res.append('Record-Route', '<sip:p1.example.com;lr>');
    res.set('Contact', '<sip:bob@192.0.2.4>');
    const d = Dialog.fromUac(inv, res, { address: '192.0.2.9', port: 5060 }, '<sip:alice@192.0.2.1>');
    expect(d.state).toBe('confirmed');
    expect(d.routeSet).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    const bye = d.createRequest('BYE');
    expect(bye.uri).toBe('sip:bob@192.0.2.4');
    expect(bye.getAll('route')).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    expect(bye.cseq).toEqual({ seq: 11, method: 'BYE' });
    expect(bye.from.tag).toBe(inv.from.tag);
    expect(bye.to.tag).toBe('b');
    expect(bye.callId).toBe('dlg-1');
    expect(d.destination(bye)).toMatchObject({ address: 'p1.example.com', port: 5060 });
    // ACK reuses the INVITE's CSeq number.
    expect(d.createRequest('ACK', { cseq: 10 }).cseq).toEqual({ seq: 10, method: 'ACK' });
  });

  it('strict router: first route becomes the Request-URI, the remote target goes last', () => {
    const inv = invite();
    const res = createResponse(inv, 200, { toTag: 'b' });
    res.set('Record-Route', '<sip:strict.example.com;maddr=192.0.2.50>');
    res.set('Contact', '<sip:bob@192.0.2.4>');
    const d = Dialog.fromUac(inv, res, { address: '192.0.2.9', port: 5060 }, '<sip:alice@192.0.2.1>');
    const req = d.createRequest('INFO');
    expect(req.uri).toBe('sip:strict.example.com');
    expect(req.getAll('route')).toEqual(['<sip:bob@192.0.2.4>']);
  });

  it('UAS: route set in Record-Route order, CSeq order enforced, target refresh', () => {
    const inv = parseMessage(
      invite().set('Record-Route', '<sip:p1.example.com;lr>').toBytes(),
    ) as SipRequest;
    const d = Dialog.fromUas(inv, 'bt', { address: '203.0.113.5', port: 40000 }, '<sip:bob@192.0.2.4>');
    expect(d.remoteTarget).toBe('sip:alice@192.0.2.1');
    expect(d.routeSet).toEqual(['<sip:p1.example.com;lr>']);
    const bye = createRequest({ method: 'BYE', uri: 'sip:bob@192.0.2.4', from: inv.get('from')!, to: '<sip:bob@biloxi.example.com>;tag=bt', callId: 'dlg-1', cseq: 9 });
    expect(d.acceptRemoteSeq(bye)).toBe(false); // lower than the INVITE's 10: 500 (§12.2.2)
    bye.set('CSeq', '11 BYE');
    expect(d.acceptRemoteSeq(bye)).toBe(true);
    const reinvite = createRequest({ method: 'INVITE', uri: 'sip:bob@192.0.2.4', from: inv.get('from')!, to: '<sip:bob@x>;tag=bt', contact: '<sip:alice@198.51.100.77>' });
    d.refreshTarget(reinvite);
    expect(d.remoteTarget).toBe('sip:alice@198.51.100.77');
  });

  it('a NATed peer (Contact not its real address) is reached at its source address', () => {
    const inv = invite();
    inv.set('Contact', '<sip:alice@10.1.2.3:5060>');
    const d = Dialog.fromUas(inv, 'bt', { address: '203.0.113.5', port: 40000 }, '<sip:bob@192.0.2.4>');
    const bye = d.createRequest('BYE');
    expect(bye.uri).toBe('sip:alice@10.1.2.3:5060');
    expect(d.destination(bye)).toMatchObject({ address: '203.0.113.5', port: 40000 });
  });
});
