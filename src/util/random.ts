import { randomBytes } from 'node:crypto';

// Cryptographically random bytes drawn in batches: one call into the CSPRNG serves
// hundreds of tags, branches and nonces (each such call costs several µs here).
// Every byte is handed out once.
let pool = Buffer.alloc(0);
let poolPos = 0;

/** `n` fresh random bytes (n ≤ 4096), as a view valid until the caller's next turn: copy or encode it at once. */
export function pooledRandomBytes(n: number): Buffer {
  if (poolPos + n > pool.length) {
    pool = randomBytes(Math.max(4096, n));
    poolPos = 0;
  }
  const b = pool.subarray(poolPos, poolPos + n);
  poolPos += n;
  return b;
}
