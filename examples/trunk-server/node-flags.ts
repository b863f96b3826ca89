/**
 * The V8 flags the trunk runs with (`npm start`, the cluster's instances, bench:trunk).
 *
 * `--max-semi-space-size=2` (MiB): V8 grows the young generation up to 16 MiB per semi-space
 * under a high allocation rate — a flood of INVITEs, a burst of call set-ups — and the process
 * keeps those pages. Measured with bench:trunk in one session: RSS per held call 10.5 → 8.9 KiB,
 * per ended call 16.5 → 8.7 KiB, a 20 000-INVITE unauthenticated flood +13.4 → +3.5 MB at its
 * peak, with the same sustained call rate (issue #16). The trunk's live data is in the old
 * generation; a short-lived message dies young whatever the semi-space size.
 */
export const TRUNK_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
