import { pooledRandomBytes as take } from '../util/random.js';
import { MAGIC_COOKIE } from './via.js';

// Identifiers are cryptographically random (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3):
// guessable tags or branches let an off-path attacker inject BYEs or CANCELs.

/** Random URL-safe token of `bytes` bytes of entropy. */
export function randomToken(bytes = 12): string {
  return take(bytes).toString('base64url');
}

/** `z9hG4bK` + 96 random bits: an RFC 3261 branch. */
export function generateBranch(): string {
  return MAGIC_COOKIE + take(12).toString('base64url');
}

export function generateTag(): string {
  return take(8).toString('hex');
}

export function generateCallId(host?: string): string {
  const id = take(15).toString('base64url');
  return host ? id + '@' + host : id;
}
