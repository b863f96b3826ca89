import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENTRIES, apiReports, reportFile, staleReports } from '../../scripts/api-report.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

// Members that sipkit's layers call on each other: tagged `/** @internal */`, kept out of the
// published declarations (stripInternal), and so out of the report.
const INTERNAL: Array<[file: string, member: string]> = [
  ['src/parser/message.ts', 'attachWire('],
  ['src/parser/message.ts', 'copyLinesInto('],
  ['src/dialog/call-base.ts', 'retransmissionGaveUp('],
  ['src/dialog/call-base.ts', 'retransmitUntilAcked('],
  ['src/dialog/call-base.ts', 'handleInDialog('],
  ['src/dialog/incoming-call.ts', 'sendProvisional('],
  ['src/dialog/user-agent.ts', 'sendInDialog('],
  ['src/b2bua/b2bua.ts', 'placeCall('],
  ['src/b2bua/b2bua.ts', 'changed(bridge'],
  ['src/b2bua/b2bua.ts', 'finished(bridge'],
  ['src/b2bua/bridge.ts', 'relayBye('],
  ['src/transaction/invite-server.ts', 'receiveAck('],
  ['src/resolver/target-list.ts', 'static resolving('],
];

describe('public API report (api/*.api.md)', () => {
  const reports = apiReports(root);

  it('the committed report matches the sources: a surface change needs `npm run api:report`', () => {
    expect(staleReports(root, reports), 'run `npm run api:report` and review the diff of api/').toEqual([]);
  });

  it('has one report per package subpath, each entry in package.json exports', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? 'sipkit' : `sipkit/${k.slice(2)}`));
    expect(Object.keys(ENTRIES).sort()).toEqual(subpaths.sort());
    expect([...reports.keys()].sort()).toEqual(Object.keys(ENTRIES).map(reportFile).sort());
  });

  it('a changed or missing report is caught', () => {
    const changed = new Map(reports);
    changed.set('dialog.api.md', reports.get('dialog.api.md')!.replace('hangup(', 'hangUp('));
    changed.delete('testing.api.md');
    changed.set('extra.api.md', '');
    expect(staleReports(root, changed)).toEqual(['dialog.api.md', 'extra.api.md', 'testing.api.md']);
  });

  it.each(INTERNAL)('%s: %s is in the source but not in the published surface', (file, member) => {
    const source = fs.readFileSync(path.join(root, file), 'utf8');
    expect(source).toContain(member);
    for (const [name, text] of reports) expect(text, name).not.toContain(member.replace(/[(:].*$/, ''));
  });

  it('private members are left out, protected ones (for subclasses) kept', () => {
    const dialog = reports.get('dialog.api.md')!;
    expect(dialog).not.toMatch(/^\s+private /m);
    expect(dialog).toMatch(/^\s+protected /m);
  });
});
