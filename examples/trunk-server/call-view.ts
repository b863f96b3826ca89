import type { CallRecord } from 'sipkit/b2bua';
import { CHARGE_TAGS } from './charges.js';

/** The JSON a user sees for a call (HTTP API and CDR lines). */
export interface CallView {
  id: string;
  status: string;
  source: string;
  destination: string;
  trunk_domain: string | null;
  extension: string | null;
  /** How the caller was authenticated: 'digest', 'ip' or 'ip+digest' (auth.ts `tags.auth`). */
  auth_method: string | null;
  tm_create: string;
  tm_ringing: string | null;
  tm_progressing: string | null;
  tm_answer: string | null;
  tm_hangup: string | null;
  hangup_by: string | null;
  hangup_code: number | null;
  hangup_reason: string | null;
  q850_cause: number | null;
  /** After a BYE from one leg: what became of the BYE relayed to the other (pending, answered, timeout, transport-error). */
  relayed_bye: string | null;
  relayed_bye_status: number | null;
  a_leg_call_id: string;
  b_leg_call_id: string | null;
  b_leg_target: string | null;
  /** Set at hangup when the call's route has a rate for the number (charges.ts); amount in the currency, exact. */
  charge: { amount: string; currency: string; billed_seconds: number; rate_prefix: string } | null;
  /**
   * Why the last target failed when the trunk, not the callee, ended the attempt: a typed code
   * (TLS_IDENTITY, TLS_UNTRUSTED, CONNECT_FAILED, DNS_NOT_FOUND, TARGETS_EXHAUSTED, …), else null.
   */
  target_error: string | null;
}

const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());

function chargeOf(tags: Record<string, string>): CallView['charge'] {
  const amount = tags[CHARGE_TAGS.amount];
  if (amount === undefined) return null;
  return { amount, currency: tags[CHARGE_TAGS.currency] ?? '', billed_seconds: Number(tags[CHARGE_TAGS.billedSeconds] ?? 0), rate_prefix: tags[CHARGE_TAGS.ratePrefix] ?? '' };
}

export function viewOf(r: CallRecord): CallView {
  return {
    id: r.id,
    status: r.state,
    source: `${r.source.transport}:${r.source.address}:${r.source.port}`,
    destination: r.to,
    trunk_domain: r.tags.domain ?? null,
    extension: r.identity ?? null,
    auth_method: r.tags.auth ?? null,
    tm_create: new Date(r.timestamps.created).toISOString(),
    tm_ringing: iso(r.timestamps.ringing),
    tm_progressing: iso(r.timestamps.progressing),
    tm_answer: iso(r.timestamps.answered),
    tm_hangup: iso(r.timestamps.hangup),
    hangup_by: r.hangup?.by ?? null,
    hangup_code: r.hangup?.status ?? null,
    hangup_reason: r.hangup?.phrase ?? null,
    q850_cause: r.hangup?.q850 ?? null,
    relayed_bye: r.hangup?.relayedBye?.outcome ?? null,
    relayed_bye_status: r.hangup?.relayedBye?.status ?? null,
    a_leg_call_id: r.aLeg.callId,
    b_leg_call_id: r.bLeg.callId ?? null,
    b_leg_target: r.bLeg.target ?? null,
    charge: chargeOf(r.tags),
    target_error: r.hangup?.targetError ?? null,
  };
}
