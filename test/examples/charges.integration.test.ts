import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dial, http, trunkWithGateway, until, type TrunkSetup } from './page-harness.js';

const setups: TrunkSetup[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('charges through the trunk: the API and the CDR line', () => {
  it('a 1/1-billed call shows its charge in GET /v1.0/calls and its CDR line; a failed call costs 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipkit-charges-'));
    dirs.push(dir);
    const cdr = join(dir, 'cdr.jsonl');
    const rates = [
      { prefix: '+49', perMinute: '0.0120', increments: '1/1', connectionFee: '0.0100', currency: 'EUR' },
      { prefix: '+4915', perMinute: '0.1800', increments: '60/60', currency: 'EUR' },
    ];
    const s = await trunkWithGateway({ cdr: { path: cdr } }, { rates });
    setups.push(s);
    const c = dial(s, '+4930123');
    await c.answered;
    await c.call.hangup();
    const failed = dial(s, '+404');
    await failed.failed;
    const views = await until(async () => {
      const r = (await http(s, '/v1.0/calls')).json.result;
      return r.length === 2 && r.every((v: any) => v.status === 'hangup') ? r : undefined;
    }, 'both calls to end');
    const answered = views.find((v: any) => v.destination.includes('+4930123'));
    // A second or less of talk at 1/1: one second billed at 0.0120/min = 0.0002, plus the 0.0100 fee.
    const seconds = Math.ceil((Date.parse(answered.tm_hangup) - Date.parse(answered.tm_answer)) / 1000);
    expect(answered.charge).toEqual({ amount: `0.${String(10_000 + 200 * seconds).padStart(6, '0').slice(0, 4)}`, currency: 'EUR', billed_seconds: seconds, rate_prefix: '+49' });
    // +404 has no rate of its own: the default-less table gives no charge.
    const unrated = views.find((v: any) => v.destination.includes('+404'));
    expect(unrated.charge).toBeNull();
    const lines = await until(() => {
      try {
        const l = readFileSync(cdr, 'utf8').trim().split('\n');
        return l.length === 2 ? l.map((x) => JSON.parse(x)) : undefined;
      } catch {
        return undefined;
      }
    }, 'two CDR lines');
    expect(lines.find((l: any) => l.id === answered.id).charge).toEqual(answered.charge);
  });
});
