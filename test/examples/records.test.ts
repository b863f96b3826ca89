import { mkdtempSync, readFileSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { viewOf } from '../../examples/trunk-server/call-view.js';
import type { Level } from '../../examples/trunk-server/log.js';
import { createCdrWriter, logCallEvents } from '../../examples/trunk-server/records.js';
import { dial, GATEWAY, run, setup } from './parts-harness.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sipkit-records-'));
  dirs.push(d);
  return d;
}

describe('the records part on a plain B2bua', () => {
  it('writes one CDR line per ended call, in the order they ended, as the HTTP API shows it', async () => {
    const path = join(tempDir(), 'cdr.jsonl');
    const s = setup({ route: (req) => (req.requestUri.toString().includes('+404') ? [] : [{ uri: `sip:+1@${GATEWAY}:5060` }]) });
    const cdr = createCdrWriter(path);
    s.b2bua.on('end', cdr.write);
    const answered = dial(s, 'sip:+1@pbx.example.test');
    dial(s, 'sip:+404@pbx.example.test');
    await run(s);
    void answered.call.hangup();
    await run(s);
    await cdr.flush();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // Each line is the call's JSON view as it ended (a relayed BYE's outcome may come later).
    expect(Object.keys(lines[0]!)).toEqual(Object.keys(viewOf(s.ended[0]!)));
    expect(lines.map((l) => l.id)).toEqual(s.ended.map((r) => r.id));
    expect(lines.map((l) => [l.status, l.hangup_by, l.hangup_code])).toEqual([
      ['hangup', 'system', 404],
      ['hangup', 'caller', null],
    ]);
  });

  it('a failed write is logged, never thrown, and the next batch is still tried', async () => {
    const logged: Array<[Level, string, unknown]> = [];
    const cdr = createCdrWriter(join(tempDir(), 'no-such-dir', 'cdr.jsonl'), (level, event, fields) => logged.push([level, event, fields?.lines]));
    const s = setup({ route: () => [] });
    s.b2bua.on('end', cdr.write);
    dial(s, 'sip:+1@pbx.example.test');
    dial(s, 'sip:+2@pbx.example.test');
    await run(s);
    await expect(cdr.flush()).resolves.toBeUndefined();
    dial(s, 'sip:+3@pbx.example.test');
    await run(s);
    await expect(cdr.flush()).resolves.toBeUndefined();
    expect(logged).toEqual([
      ['error', 'cdr.write_failed', 2],
      ['error', 'cdr.write_failed', 1],
    ]);
  });

  it('batches: the lines of calls that end together go to the file in one append, in order', async () => {
    const path = join(tempDir(), 'cdr.jsonl');
    const appends: number[] = [];
    const cdr = createCdrWriter(path, undefined, {
      append: (p, data) => {
        appends.push(data.split('\n').length - 1);
        return appendFile(p, data);
      },
    });
    const s = setup({ route: (req) => (req.requestUri.toString().includes('+404') ? [] : [{ uri: `sip:+1@${GATEWAY}:5060` }]) });
    s.b2bua.on('end', cdr.write);
    for (let i = 0; i < 50; i++) dial(s, 'sip:+404@pbx.example.test');
    await run(s);
    await cdr.flush();
    const ids = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toEqual(s.ended.map((r) => r.id));
    expect(ids).toHaveLength(50);
    // One line per append (as before) would be 50 appends: 150 system calls on the thread pool.
    expect(appends.length).toBeLessThanOrEqual(2);
    expect(appends.reduce((a, b) => a + b, 0)).toBe(50);
  });

  it('survives logrotate: after a rename the next line goes to a new file at the path; after copytruncate, to the emptied file', async () => {
    const path = join(tempDir(), 'cdr.jsonl');
    const cdr = createCdrWriter(path);
    const ended = (n: number): CallRecord => ({
      id: `cdr-${n}`,
      state: 'hangup',
      from: '<sip:1000@x>',
      to: 'sip:+1@x',
      identity: '1000',
      source: { address: '127.0.0.1', port: 5060, transport: 'udp' },
      aLeg: { callId: `a-${n}` },
      bLeg: { callId: undefined, target: undefined, attempts: 0 },
      timestamps: { created: 1_700_000_000_000, hangup: 1_700_000_001_000 },
      hangup: { by: 'caller', status: undefined, phrase: undefined, q850: 16 },
      tags: {},
    });
    const ids = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    cdr.write(ended(1));
    await cdr.flush();
    renameSync(path, `${path}.1`); // logrotate's default: rename, then (create) a new file
    cdr.write(ended(2));
    cdr.write(ended(3));
    await cdr.flush();
    expect(ids(`${path}.1`)).toEqual(['cdr-1']);
    expect(ids(path)).toEqual(['cdr-2', 'cdr-3']);
    truncateSync(path, 0); // copytruncate: copied elsewhere, then emptied in place
    cdr.write(ended(4));
    await cdr.flush();
    // Appended at the new end (O_APPEND): no hole of NULs where the old lines were.
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify(viewOf(ended(4))) + '\n');
  });

  it('logCallEvents logs each call created, updated and ended', async () => {
    const events: string[] = [];
    const s = setup({ route: () => [{ uri: `sip:+1@${GATEWAY}:5060` }] });
    logCallEvents(s.b2bua, (level, event, fields) => events.push(`${level} ${event} ${fields?.by ?? ''}`.trimEnd()));
    const d = dial(s, 'sip:+1@pbx.example.test');
    await run(s);
    void d.call.hangup();
    await run(s);
    expect(events[0]).toBe('info call.created');
    expect(events.filter((e) => e.startsWith('info '))).toEqual(['info call.created', 'info call.ended caller']);
    expect(events.filter((e) => e === 'debug call.updated').length).toBeGreaterThan(1);
  });
});
