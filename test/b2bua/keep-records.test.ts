import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { trunk } from '../support/b2bua-harness.js';

const ended = (i: number): CallRecord => ({
  id: `r${i}`,
  state: 'hangup',
  from: '<sip:a@x>;tag=1',
  to: 'sip:b@x',
  identity: undefined,
  source: { address: '10.0.0.1', port: 5060, transport: 'udp' },
  aLeg: { callId: `c${i}` },
  bLeg: { callId: undefined, target: undefined, attempts: 0 },
  timestamps: { created: i, hangup: i + 1 },
  hangup: undefined,
  tags: {},
});

describe('keepRecords', () => {
  it('keeps the newest ended records, in the order they ended, over many more than it keeps', async () => {
    const t = trunk({ b2bua: { keepRecords: 5 } });
    for (let i = 0; i < 5000; i++) t.b2bua.addRecord(ended(i));
    expect(t.b2bua.list().map((r) => r.id).sort()).toEqual(['r4995', 'r4996', 'r4997', 'r4998', 'r4999']);
    // The queue of ended ids is compacted as it goes: it does not keep an entry per record ever stored.
    expect((t.b2bua as unknown as { endedOrder: { items: unknown[] } }).endedOrder.items.length).toBeLessThan(2100);
    await t.b2bua.close();
  });
});
