import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { byeFromSnapshot, parseDialogSnapshot, UserAgent, type DialogSnapshot } from '../../src/dialog/index.js';
import { SipError } from '../../src/parser/index.js';
import { CallJournalFile } from '../../examples/trunk-server/journal.js';
import { validateConfig, defaultConfig } from '../../examples/trunk-server/config.js';
import { CALLER, DEST, placeCall, run, SDP_DEST, TRUNK, trunk } from '../support/b2bua-harness.js';

function tmp(): string {
  return join(mkdtempSync(join(tmpdir(), 'journal-')), 'journal.jsonl');
}

function snapshot(callId: string): DialogSnapshot {
  return {
    callId,
    localTag: 'lt',
    remoteTag: 'rt',
    role: 'uas',
    localUri: '<sip:b@x>',
    remoteUri: '<sip:a@y>',
    remoteTarget: 'sip:a@127.0.0.1:5099',
    routeSet: [],
    localSeq: 7,
    localContact: '<sip:trunk@127.0.0.1:5060>',
    secure: false,
    peer: { address: '127.0.0.1', port: 5099 },
  };
}

function record(id: string): CallRecord {
  return {
    id,
    state: 'progressing',
    from: '<sip:1000@d>',
    to: 'sip:1@d',
    identity: '1000',
    source: { address: '127.0.0.1', port: 5099, transport: 'udp' },
    aLeg: { callId: 'a-' + id },
    bLeg: { callId: 'b-' + id, target: 'sip:1@gw', attempts: 1 },
    timestamps: { created: 1 },
    hangup: undefined,
    tags: {},
  };
}

describe('trunk call journal file', () => {
  it('keeps answered calls across a reopen, forgets ended ones, and skips a torn last line', () => {
    const path = tmp();
    const { journal, up } = CallJournalFile.open(path);
    expect(up).toEqual([]);
    journal.answered({ record: record('c1'), caller: snapshot('a-c1'), callee: snapshot('b-c1') });
    journal.answered({ record: record('c2'), caller: snapshot('a-c2'), callee: snapshot('b-c2') });
    journal.ended(record('c1'));
    // A crash in the middle of a line.
    appendFileSync(path, '{"t":"up","call":{"id":"c3","answ');
    const again = CallJournalFile.open(path);
    expect(again.up.map((c) => c.id)).toEqual(['c2']);
    expect(again.up[0]!.caller).toEqual(snapshot('a-c2'));
    expect(again.journal.skipped).toBe(1);
    // Compacted on open: only the live call remains.
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('stays bounded: after many calls come and go the file holds only what is live', () => {
    const path = tmp();
    const { journal } = CallJournalFile.open(path);
    journal.answered({ record: record('held'), caller: snapshot('a'), callee: snapshot('b') });
    for (let i = 0; i < 3000; i++) {
      journal.answered({ record: record('x' + i), caller: snapshot('a' + i), callee: snapshot('b' + i) });
      journal.ended(record('x' + i));
    }
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(1024 + 3);
    expect(CallJournalFile.open(path).up.map((c) => c.id)).toEqual(['held']);
  });

  it('ignores entries whose dialog snapshot is malformed', () => {
    const path = tmp();
    writeFileSync(path, JSON.stringify({ t: 'up', call: { id: 'x', answeredAt: 1, record: record('x'), caller: { callId: 'c' }, callee: snapshot('b') } }) + '\n');
    const { up, journal } = CallJournalFile.open(path);
    expect(up).toEqual([]);
    expect(journal.skipped).toBe(1);
  });
});

describe('journal config', () => {
  it('the embedded default journals to ./trunk-journal.jsonl with cause 41; a config file only when it asks', () => {
    expect(defaultConfig().journal).toEqual({ path: 'trunk-journal.jsonl', cause: 41, fsync: false });
    expect(validateConfig({}).journal.path).toBeNull();
    expect(validateConfig({ journal: { path: '/tmp/j.jsonl', cause: 16, fsync: true } }).journal).toEqual({ path: '/tmp/j.jsonl', cause: 16, fsync: true });
  });

  it.each([
    [{ journal: { path: '' } }, 'journal.path'],
    [{ journal: { path: 'j', cause: 0 } }, 'journal.cause'],
    [{ journal: { path: 'j', cause: 128 } }, 'journal.cause'],
    [{ journal: { path: 'j', fsync: 'yes' } }, 'journal.fsync'],
    [{ journal: 'j' }, 'journal'],
  ])('%j is refused naming %s', (input, field) => {
    expect(() => validateConfig(input)).toThrow(`config: ${field}:`);
  });
});

describe('dialog snapshots', () => {
  it('parseDialogSnapshot refuses what is not one, with SipError BAD_DIALOG_SNAPSHOT', () => {
    for (const bad of [null, {}, { ...snapshot('c'), localSeq: -1 }, { ...snapshot('c'), localSeq: 2 ** 31 }, { ...snapshot('c'), routeSet: 'x' }, { ...snapshot('c'), role: 'x' }, { ...snapshot('c'), peer: { address: 'h', port: 0 } }]) {
      let err: unknown;
      try {
        parseDialogSnapshot(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SipError);
      expect((err as SipError).code).toBe('BAD_DIALOG_SNAPSHOT');
    }
    expect(parseDialogSnapshot(JSON.parse(JSON.stringify(snapshot('c'))))).toEqual(snapshot('c'));
  });

  it('a B2BUA journals both legs before the caller\'s 200; a fresh UA ends both from the snapshots (the restart, in memory)', async () => {
    const entries: Array<{ caller: DialogSnapshot; callee: DialogSnapshot; okSentBefore: boolean }> = [];
    const ended: string[] = [];
    const t: ReturnType<typeof trunk> = trunk({
      b2bua: {
        journal: {
          answered: (c) => entries.push({ caller: c.caller, callee: c.callee, okSentBefore: t.net.packets('SIP/2.0 200').some((p) => p.to.address === CALLER && /INVITE/.test(Buffer.from(p.bytes).toString())) }),
          ended: (r) => ended.push(r.id),
        },
      },
    });
    const a = placeCall(t);
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
    expect(entries).toHaveLength(1);
    expect(entries[0]!.okSentBefore).toBe(false);
    const { caller, callee } = JSON.parse(JSON.stringify(entries[0]!)) as { caller: DialogSnapshot; callee: DialogSnapshot };
    expect(caller.callId).toBe(a.callId);
    expect(callee.callId).toBe(t.atDest[0]!.callId);
    // The trunk "crashes": its transaction layer and transports go without ending any call
    // (b2bua.close() would BYE both legs); a new UA on the same address ends the call from the journal.
    await t.b2bua.ua.layer.close();
    const restarted = new UserAgent({ transports: [t.net.transport(TRUNK, 5060)], clock: t.clock });
    const hangups: Array<{ side: string; reason: unknown }> = [];
    a.on('hangup', (c) => hangups.push({ side: 'caller', reason: c.reason }));
    t.atDest[0]!.on('hangup', (c) => hangups.push({ side: 'callee', reason: c.reason }));
    const reason = { protocol: 'Q.850', cause: 41, text: 'Restart' };
    const done = Promise.all([byeFromSnapshot(restarted, caller, { reason }), byeFromSnapshot(restarted, callee, { reason, cseq: callee.localSeq + 1000 })]);
    await run(t);
    const [ra, rb] = await done;
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(hangups).toHaveLength(2);
    expect(hangups).toEqual(
      expect.arrayContaining([
        { side: 'caller', reason: expect.objectContaining({ protocol: 'Q.850', cause: 41 }) },
        { side: 'callee', reason: expect.objectContaining({ protocol: 'Q.850', cause: 41 }) },
      ]),
    );
    const byeToDest = t.net.packets('BYE').filter((p) => p.to.address === DEST).at(-1)!;
    expect(Buffer.from(byeToDest.bytes).toString()).toContain(`CSeq: ${callee.localSeq + 1000} BYE`);
    await restarted.close();
  });
});
