// Public face of sipkit/digest: RFC 7616 / RFC 8760 digest authentication for SIP (RFC 3261 §22).
export { DigestError, type DigestErrorCode } from './errors.js';
export { DIGEST_ALGORITHMS, resolveAlgorithm, type DigestAlgorithm, type HashFunction } from './algorithms.js';
export { digestResponse, computeHA1, computeUserhash, type DigestParams, type Qop } from './compute.js';
export {
  parseAuthHeader,
  parseChallenges,
  parseCredentials,
  formatChallenge,
  formatCredentials,
  decodeExtValue,
  encodeExtValue,
  type AuthParams,
  type DigestChallenge,
  type DigestCredentials,
  type ChallengeInit,
  type CredentialsInit,
} from './header.js';
export { NonceCodec, type NonceStatus } from './nonce.js';
export { type ThrottleOptions } from './throttle.js';
export { DigestClient, type DigestClientOptions } from './client.js';
export {
  DigestServer,
  type DigestServerOptions,
  type DigestUserLookup,
  type DigestUserRecord,
  type DigestVerifyResult,
  type DigestRejectReason,
  type VerifyContext,
} from './server.js';
