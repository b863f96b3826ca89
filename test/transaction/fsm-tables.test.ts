import { describe, expect, it } from 'vitest';
import { IGNORE, TERMINATED, type AnyMachine } from '../../src/transaction/fsm.js';
import { INVITE_CLIENT } from '../../src/transaction/invite-client.js';
import { INVITE_SERVER } from '../../src/transaction/invite-server.js';
import { NON_INVITE_CLIENT } from '../../src/transaction/non-invite-client.js';
import { NON_INVITE_SERVER } from '../../src/transaction/non-invite-server.js';

const MACHINES: Array<[string, AnyMachine]> = [
  ['INVITE client', INVITE_CLIENT],
  ['non-INVITE client', NON_INVITE_CLIENT],
  ['INVITE server', INVITE_SERVER],
  ['non-INVITE server', NON_INVITE_SERVER],
];

/** Everything wrong with a table: an empty list means every (state, event) cell is a transition or an explicit ignore. */
function problems(m: AnyMachine): string[] {
  const out: string[] = [];
  const states = new Set(m.states);
  const events = new Set(m.events);
  const actions = new Set(m.actions);
  if (states.size !== m.states.length) out.push('a state is listed twice');
  if (events.size !== m.events.length) out.push('an event is listed twice');
  if (actions.size !== m.actions.length) out.push('an action is listed twice');
  if (!states.has(m.initial)) out.push(`initial state ${m.initial} is not a state`);
  if (m.states.at(-1) !== TERMINATED) out.push('terminated is not the last state');
  for (const a of m.entry) if (!actions.has(a)) out.push(`entry action ${a} is not an action`);
  for (const s of Object.keys(m.rows)) if (!states.has(s)) out.push(`row ${s} is not a state`);
  const usedEvents = new Set<string>();
  const usedActions = new Set<string>(m.entry);
  const next = new Map<string, Set<string>>();
  for (const s of m.states) {
    const row = m.rows[s];
    next.set(s, new Set());
    if (row === undefined) {
      out.push(`state ${s} has no row`);
      continue;
    }
    for (const e of Object.keys(row)) if (!events.has(e)) out.push(`${s} × ${e}: not an event`);
    for (const e of m.events) {
      if (!Object.hasOwn(row, e)) {
        out.push(`${s} × ${e}: neither a transition nor an ignore`);
        continue;
      }
      const cell = row[e];
      if (cell === IGNORE) continue;
      if (!Array.isArray(cell) || cell.length === 0) {
        out.push(`${s} × ${e}: not a cell`);
        continue;
      }
      const [to, ...acts] = cell as readonly string[];
      if (!states.has(to!)) out.push(`${s} × ${e}: next state ${to} is not a state`);
      for (const a of acts) {
        if (!actions.has(a)) out.push(`${s} × ${e}: ${a} is not an action`);
        usedActions.add(a);
      }
      if (s === TERMINATED) out.push(`${s} × ${e}: Terminated must absorb everything`);
      usedEvents.add(e);
      next.get(s)!.add(to!);
    }
  }
  for (const e of m.events) if (!usedEvents.has(e)) out.push(`event ${e} moves no state: drop it or handle it`);
  for (const a of m.actions) if (!usedActions.has(a)) out.push(`action ${a} is never run`);
  // Every state is reachable from the initial one, and every state can reach Terminated.
  const reach = (from: string, graph: Map<string, Set<string>>): Set<string> => {
    const seen = new Set([from]);
    const todo = [from];
    while (todo.length > 0) for (const n of graph.get(todo.pop()!) ?? []) if (!seen.has(n)) seen.add(n), todo.push(n);
    return seen;
  };
  const fromInitial = reach(m.initial, next);
  for (const s of m.states) {
    if (!fromInitial.has(s)) out.push(`state ${s} is unreachable`);
    if (!reach(s, next).has(TERMINATED)) out.push(`state ${s} never ends`);
  }
  return out;
}

describe('transaction state × event tables', () => {
  it.each(MACHINES)('%s: every (state, event) pair is a transition or an explicit ignore', (_, m) => {
    expect(problems(m)).toEqual([]);
    expect(m.figure).toMatch(/^RFC 3261 Figure [5-8]/);
  });

  it.each(MACHINES)('%s: every row lists the events in the same order (one shape per table for the engine lookup)', (_, m) => {
    const shapes = new Set(m.states.map((s) => Object.keys(m.rows[s]!).join(',')));
    // The same keys in the same order in every row: the engine's lookup sees one shape per table.
    expect(shapes.size).toBe(1);
  });

  it('catches a half-handled state or event', () => {
    const m = INVITE_CLIENT as unknown as AnyMachine;
    const rows = { ...m.rows, accepted: { ...m.rows['accepted']! } };
    delete (rows.accepted as Record<string, unknown>)['timer_M'];
    const withNewEvent = { ...m, events: [...m.events, 'timer_X'] };
    const withNewState = { ...m, states: ['lingering', ...m.states] };
    const badTarget = { ...m, rows: { ...m.rows, calling: { ...m.rows['calling']!, timer_B: ['gone'] as const } } };
    const busyTerminated = { ...m, rows: { ...m.rows, terminated: { ...m.rows['terminated']!, '2xx': ['terminated'] as const } } };
    expect(problems({ ...m, rows })).toContain('accepted × timer_M: neither a transition nor an ignore');
    expect(problems({ ...m, rows })).toContain('state accepted never ends');
    expect(problems(withNewEvent)).toContain('calling × timer_X: neither a transition nor an ignore');
    expect(problems(withNewState)).toContain('state lingering has no row');
    expect(problems(badTarget)).toContain('calling × timer_B: next state gone is not a state');
    expect(problems(busyTerminated)).toContain('terminated × 2xx: Terminated must absorb everything');
  });
});
