import { resolveAlgorithm } from './algorithms.js';
import { DigestError } from './errors.js';

/** Smallest HMAC key `DigestServer` and `NonceCodec` accept, in bytes. */
export const MIN_SECRET_BYTES = 16;

function bad(what: string, why: string): DigestError {
  return new DigestError('BAD_OPTION', `DigestServer: ${what} ${why}`);
}

function positive(v: unknown, what: string): void {
  if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw bad(what, `must be a positive number (got ${String(v)})`);
}

function count(v: unknown, what: string): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1)) throw bad(what, `must be a whole number of at least 1 (got ${String(v)})`);
}

/**
 * Check what a `DigestServer` is given, so a mistake fails at construction with a
 * `DigestError` naming the option rather than later, on a caller's request.
 */
export function checkServerOptions(given: unknown): void {
  if (typeof given !== 'object' || given === null) throw bad('options', 'must be an object');
  // Read as unknowns: JavaScript callers and `as any` reach here too.
  const options = given as { [K in 'secret' | 'realm' | 'lookup' | 'lookupUserhash' | 'realmAlgorithms' | 'now' | 'algorithms' | 'qop' | 'bindNonce' | 'nonceTtlMs' | 'replayTableSize' | 'ncWindow']?: unknown } & {
    throttle?: unknown;
  };
  const { secret, realm } = options;
  if (typeof secret !== 'string' && !(secret instanceof Uint8Array)) throw bad('secret', 'must be a string or a Uint8Array');
  const bytes = typeof secret === 'string' ? Buffer.byteLength(secret, 'utf8') : secret.length;
  if (bytes < MIN_SECRET_BYTES) throw bad('secret', `must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes})`);
  // The realm goes out in a quoted-string (RFC 7616 §3.3): no control characters (CR LF would split the header).
  if (typeof realm === 'string') {
    if (realm.length === 0 || /[\x00-\x1f\x7f]/.test(realm)) throw bad('realm', 'must be a non-empty string without control characters');
  } else if (typeof realm !== 'function') {
    throw bad('realm', 'must be a string or a function of the request');
  }
  if (typeof options.lookup !== 'function') throw bad('lookup', 'must be a function');
  if (options.lookupUserhash !== undefined && typeof options.lookupUserhash !== 'function') throw bad('lookupUserhash', 'must be a function');
  if (options.realmAlgorithms !== undefined && typeof options.realmAlgorithms !== 'function') throw bad('realmAlgorithms', 'must be a function');
  if (options.now !== undefined && typeof options.now !== 'function') throw bad('now', 'must be a function');
  if (options.algorithms !== undefined) {
    if (!Array.isArray(options.algorithms)) throw bad('algorithms', 'must be an array');
    if (options.algorithms.length === 0) throw bad('algorithms', 'must enable at least one algorithm');
    for (const a of options.algorithms) {
      if (typeof a !== 'string' || resolveAlgorithm(a) !== a) throw new DigestError('UNSUPPORTED_ALGORITHM', `DigestServer: unsupported digest algorithm ${String(a)}`);
    }
  }
  if (options.qop !== undefined) {
    if (!Array.isArray(options.qop)) throw bad('qop', 'must be an array');
    for (const q of options.qop) if (q !== 'auth' && q !== 'auth-int') throw bad('qop', `must list only auth and auth-int (got ${String(q)})`);
  }
  const bind = options.bindNonce;
  if (bind !== undefined && bind !== 'none' && bind !== 'source' && bind !== 'call-id') throw bad('bindNonce', `must be none, source or call-id (got ${String(bind)})`);
  positive(options.nonceTtlMs, 'nonceTtlMs');
  count(options.replayTableSize, 'replayTableSize');
  count(options.ncWindow, 'ncWindow');
  const t = options.throttle;
  if (t !== undefined && t !== false) {
    if (typeof t !== 'object' || t === null) throw bad('throttle', 'must be false or an object');
    const { maxFailures, windowMs, blockMs, tableSize, maxUsersPerSource } = t as Record<string, unknown>;
    count(maxFailures, 'throttle.maxFailures');
    positive(windowMs, 'throttle.windowMs');
    if (blockMs !== undefined && !(typeof blockMs === 'number' && blockMs >= 0 && Number.isFinite(blockMs))) {
      throw bad('throttle.blockMs', `must be a number of at least 0 (got ${String(blockMs)})`);
    }
    count(tableSize, 'throttle.tableSize');
    count(maxUsersPerSource, 'throttle.maxUsersPerSource');
  }
}
