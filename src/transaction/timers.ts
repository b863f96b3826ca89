/** RFC 3261 §17 timer base values (Table 4), in ms. */
export interface TimerValues {
  /** RTT estimate (default 500). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4000). */
  T2: number;
  /** Maximum time a message stays in the network (default 5000). */
  T4: number;
  /** Timer D: wait for response retransmissions after a non-2xx to INVITE (> 32 s on UDP). */
  D: number;
}

export const DEFAULT_TIMERS: Readonly<TimerValues> = Object.freeze({ T1: 500, T2: 4000, T4: 5000, D: 32_000 });
