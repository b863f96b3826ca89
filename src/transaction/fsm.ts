/**
 * State × event tables for the four RFC 3261 §17 transaction machines.
 *
 * Each machine is data: for every state, for every event, either the next state and the
 * actions run on the way (in order), or IGNORE: the event is absorbed and nothing happens.
 * Every cell is written out, so a table reads next to its RFC figure and a new state or
 * event cannot be left half-handled (the compiler wants every key, a test checks the rest).
 * The tables are module-level constants shared by every transaction of their kind.
 */

/** The cell of an event a state absorbs: no state change, no action. */
export const IGNORE = 'ignore';

/** The next state, then the actions to run, in order. */
export type Transition<S extends string, A extends string> = readonly [to: S, ...actions: A[]];

export type Cell<S extends string, A extends string> = Transition<S, A> | typeof IGNORE;

export interface Machine<S extends string, E extends string, A extends string> {
  /** The RFC figure this table transcribes. */
  readonly figure: string;
  readonly initial: S;
  /** Run when the transaction is created (the figure's entry arrow). */
  readonly entry: readonly A[];
  /** Every state, `terminated` last; every event; every action. */
  readonly states: readonly S[];
  readonly events: readonly E[];
  readonly actions: readonly A[];
  readonly rows: { readonly [s in S]: { readonly [e in E]: Cell<S, A> } };
}

/** A machine seen without its names, as the engine in base.ts runs it. */
export type AnyMachine = Machine<string, string, string>;

/** The state every machine ends in: the transaction is gone and every event is absorbed. */
export const TERMINATED = 'terminated';
