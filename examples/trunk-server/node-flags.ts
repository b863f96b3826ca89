/**
 * The V8 flags the trunk runs with (`npm start`, the cluster's instances, bench:trunk).
 *
 * `--max-semi-space-size=8` (MiB): V8 grows the young generation up to 16 MiB per semi-space
 * under a high allocation rate — a flood of INVITEs, a burst of call set-ups — and the process
 * keeps those pages; capping it bounds what a flood or a burst leaves behind. The cap trades
 * memory against GC work: at 2 MiB a busy trunk scavenged every ~15 ms, so anything alive for a
 * few round trips (a call being set up, a challenge awaiting its ACK) was promoted to the old
 * generation and collected there. Measured with bench:trunk, same code, same run (issue #16):
 * 2 → 8 MiB cut CPU per call at 900 calls/s from 1.19 to 0.83 ms (promoted bytes per call and
 * scavenge time both fell), RSS per held call 8.1 → 7.7 KiB, a 20 000-INVITE unauthenticated
 * flood +7.2 MB at its peak and back to where it started by its end. (16 MiB, V8's default,
 * left 10.5 KiB per held call and +13.4 MB after a flood in an earlier round.)
 */
export const TRUNK_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
