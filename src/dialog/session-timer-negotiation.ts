import { createResponse, SipError, type SipMessage, type SipRequest, type SipResponse } from '../parser/index.js';

/**
 * Session timers (RFC 4028): what a user agent asks for, and the rules that turn a
 * request's Session-Expires/Min-SE into the interval and the refresher both sides use.
 * Pure functions: the running timer is session-timer.ts.
 */

/** `UserAgentOptions.sessionTimer` / `InviteOptions.sessionTimer`. */
export interface SessionTimerOptions {
  /** The session interval asked for (UAC) or proposed when the caller asks none (UAS). Default 1800 s (RFC 4028 §4). */
  seconds?: number;
  /** This side's Min-SE: shorter intervals are refused with 422. Default 90 s, the floor of RFC 4028 §4/§5. */
  minSeconds?: number;
  /**
   * Who should refresh when this side chooses: relative ('local' | 'remote') or as roles of the
   * INVITE that set the call up ('uac' | 'uas'). Default: the caller when it supports timers
   * (it asked for them), else this side (RFC 4028 §9 requires the UAS then).
   */
  refresher?: 'uac' | 'uas' | 'local' | 'remote';
  /** How refreshes are sent. Default: UPDATE when the peer allows it, re-INVITE otherwise (RFC 4028 §10). */
  method?: 'UPDATE' | 'INVITE';
  /**
   * Allow `seconds`/`minSeconds` below 90 s. RFC 4028 §4/§5 forbid them on the wire: this is
   * for tests that must see a session expire within seconds, never for production.
   */
  allowShortIntervals?: boolean;
}

/** Options resolved and checked. `refresher` is relative to the side that holds them. */
export interface SessionTimerConfig {
  seconds: number;
  minSeconds: number;
  /** Preference when this side is the UAC of the initial INVITE / the UAS of it. */
  asUac: 'local' | 'remote' | undefined;
  asUas: 'local' | 'remote' | undefined;
  method: 'UPDATE' | 'INVITE' | undefined;
}

/** RFC 4028 §4: the recommended session interval. */
export const DEFAULT_SESSION_SECONDS = 1800;
/** RFC 4028 §4/§5: Min-SE "MUST NOT be less than 90 seconds". */
export const RFC_MIN_SE = 90;
/** Largest interval accepted or sent (a day): the clock's timers need finite, sane numbers. */
const MAX_SESSION_SECONDS = 86_400;

/** Check options once, when the user agent or the call is made: a bad one is `SipError` `BAD_OPTION`. */
export function resolveSessionTimer(o: SessionTimerOptions): SessionTimerConfig {
  const floor = o.allowShortIntervals ? 1 : RFC_MIN_SE;
  const minSeconds = o.minSeconds ?? RFC_MIN_SE;
  const seconds = o.seconds ?? Math.max(DEFAULT_SESSION_SECONDS, minSeconds);
  for (const [name, v] of [['minSeconds', minSeconds], ['seconds', seconds]] as const) {
    if (!Number.isInteger(v) || v < floor || v > MAX_SESSION_SECONDS) {
      throw new SipError('BAD_OPTION', `sessionTimer.${name} must be an integer from ${floor} to ${MAX_SESSION_SECONDS} (RFC 4028 §5; allowShortIntervals lowers the floor for tests)`);
    }
  }
  if (seconds < minSeconds) throw new SipError('BAD_OPTION', 'sessionTimer.seconds must not be below sessionTimer.minSeconds');
  const r = o.refresher;
  if (r !== undefined && r !== 'uac' && r !== 'uas' && r !== 'local' && r !== 'remote') throw new SipError('BAD_OPTION', `sessionTimer.refresher: ${String(r)}`);
  if (o.method !== undefined && o.method !== 'UPDATE' && o.method !== 'INVITE') throw new SipError('BAD_OPTION', `sessionTimer.method: ${String(o.method)}`);
  const asUac = r === 'uac' ? 'local' : r === 'uas' ? 'remote' : r;
  const asUas = r === 'uac' ? 'remote' : r === 'uas' ? 'local' : r;
  return { seconds, minSeconds, asUac, asUas, method: o.method };
}

/** Session-Expires = delta-seconds [;refresher=uac|uas] (RFC 4028 §4). */
export interface SessionExpires {
  seconds: number;
  refresher: 'uac' | 'uas' | undefined;
}

function deltaSeconds(text: string, name: string): number {
  const t = text.trim();
  // Thrown for a header that cannot be read: a request gets its 400, a response's header is ignored.
  if (!/^\d{1,10}$/.test(t)) throw new SipError('BAD_HEADER', `Bad ${name}`);
  return Math.min(Number(t), MAX_SESSION_SECONDS);
}

function readSessionExpires(m: SipMessage): SessionExpires | undefined {
  const v = m.get('session-expires');
  if (v === undefined) return undefined;
  const [head, ...params] = v.split(';');
  const seconds = deltaSeconds(head!, 'Session-Expires');
  let refresher: SessionExpires['refresher'];
  for (const p of params) {
    const [k, val] = p.split('=', 2).map((s) => s.trim().toLowerCase());
    if (k !== 'refresher') continue;
    // Liberal in what we accept: an unknown refresher value reads as none given.
    if (val === 'uac' || val === 'uas') refresher = val;
  }
  return { seconds, refresher };
}

function readMinSe(m: SipMessage): number | undefined {
  const v = m.get('min-se');
  return v === undefined ? undefined : deltaSeconds(v.split(';')[0]!, 'Min-SE');
}

/** Session-Expires of a response; undefined when absent or unreadable (a bad response header is ignored). */
export function sessionExpiresOf(m: SipMessage): SessionExpires | undefined {
  try {
    return readSessionExpires(m);
  } catch {
    return undefined;
  }
}

/** Min-SE of a response (the 422's), undefined when absent or unreadable. */
export function minSeOf(m: SipMessage): number | undefined {
  try {
    return readMinSe(m);
  } catch {
    return undefined;
  }
}

function hasOptionTag(m: SipMessage, header: string, tag: string): boolean {
  return m.getAll(header).some((t) => t.trim().toLowerCase() === tag);
}

/** The message says its sender supports session timers (`Supported: timer` or `Require: timer`). */
export function supportsTimer(m: SipMessage): boolean {
  return hasOptionTag(m, 'supported', 'timer') || hasOptionTag(m, 'require', 'timer');
}

/** The message's Allow lists UPDATE (RFC 3311): refreshes can use it. */
export function allowsUpdate(m: SipMessage): boolean {
  return hasOptionTag(m, 'allow', 'update');
}

export function formatSessionExpires(seconds: number, refresher: 'uac' | 'uas' | undefined): string {
  return refresher ? `${seconds};refresher=${refresher}` : String(seconds);
}

/** The interval and who refreshes, as the side holding them sees it. */
export interface Negotiated {
  seconds: number;
  refresher: 'local' | 'remote';
}

/** Either what the UAS answers a refresh or initial INVITE with, or the response that refuses it. */
export type UasDecision = { accept: Negotiated; requireTimer: boolean } | { refuse: SipResponse };

/**
 * RFC 4028 §9, the UAS of an INVITE or UPDATE (initial or a refresh inside the dialog).
 * `current` is what is in force for a refresh inside the dialog: kept where the request asks
 * nothing; for the initial INVITE the configured interval and `asUas` preference stand in.
 */
export function decideAsUas(req: SipRequest, config: SessionTimerConfig, current?: Negotiated): UasDecision {
  let se: SessionExpires | undefined;
  let minSe: number | undefined;
  try {
    se = readSessionExpires(req);
    minSe = readMinSe(req);
  } catch (err) {
    if (!(err instanceof SipError) || err.code !== 'BAD_HEADER') throw err;
    return { refuse: createResponse(req, 400, { reason: err.message }) };
  }
  const uacSupports = supportsTimer(req);
  // §9: "the UAS MAY reject the INVITE request with a 422 … if the session interval in the
  // Session-Expires header field is smaller than the minimum interval defined by the UAS'
  // local policy", when the request says the UAC supports timers (only then can it retry).
  if (se && uacSupports && se.seconds < config.minSeconds) {
    return { refuse: createResponse(req, 422, { headers: [['Min-SE', String(config.minSeconds)]] }) };
  }
  // §9: the UAS MAY reduce the interval but never below the request's Min-SE (or 90 s), and
  // MUST NOT increase it. Without Session-Expires the UAS may ask for one itself.
  const floor = Math.max(minSe ?? 0, config.minSeconds);
  const wanted = current?.seconds ?? config.seconds;
  // A proxy-inserted Session-Expires below our floor (the UAC cannot take a 422) is raised to it:
  // a timer far shorter than this side accepts would only flood the dialog with refreshes.
  const seconds = se ? Math.max(Math.min(se.seconds, Math.max(wanted, floor)), config.minSeconds) : Math.max(wanted, floor);
  // §9: the request's refresher parameter stands; else the UAS picks, and must pick itself when the
  // UAC does not support timers (it could not be told to refresh).
  let refresher: Negotiated['refresher'];
  if (se?.refresher) refresher = se.refresher === 'uac' ? 'remote' : 'local';
  else if (!uacSupports) refresher = 'local';
  else refresher = current?.refresher ?? config.asUas ?? 'remote';
  // §9: Require: timer goes in the 2xx when the UAC supports timers (mandatory when it refreshes:
  // the UAC must learn that it has to).
  return { accept: { seconds, refresher }, requireTimer: uacSupports };
}

/** The headers a 2xx carries for an accepted interval (the UAS's roles: uac is the peer). */
export function uasResponseHeaders(d: { accept: Negotiated; requireTimer: boolean }): Array<[string, string]> {
  const headers: Array<[string, string]> = [['Session-Expires', formatSessionExpires(d.accept.seconds, d.accept.refresher === 'local' ? 'uas' : 'uac')]];
  if (d.requireTimer) headers.push(['Require', 'timer']);
  headers.push(['Supported', 'timer']);
  return headers;
}

/** Headers of a request asking for `seconds` (RFC 4028 §7.1, §7.4): `refresher` as this request's roles. */
export function uacRequestHeaders(seconds: number, minSeconds: number, refresher: 'uac' | 'uas' | undefined): Array<[string, string]> {
  const headers: Array<[string, string]> = [
    ['Supported', 'timer'],
    ['Session-Expires', formatSessionExpires(seconds, refresher)],
  ];
  // §5: Min-SE absent means 90 s; sent when this side's floor differs.
  if (minSeconds !== RFC_MIN_SE) headers.push(['Min-SE', String(minSeconds)]);
  return headers;
}

/**
 * RFC 4028 §7.2, the UAC's reading of a 2xx to an INVITE or UPDATE that asked for `asked`
 * seconds. A Session-Expires in the 2xx sets interval and refresher ("The UAC MUST set the
 * identity of the refresher to the value of this parameter"); none means the UAS does not do
 * timers, and "if the UAC still wishes to use the session timer … it has to perform them",
 * with the interval it asked for.
 */
export function decideAsUac(res: SipResponse, asked: number, minSeconds: number): Negotiated {
  const se = sessionExpiresOf(res);
  if (!se) return { seconds: asked, refresher: 'local' };
  // A Session-Expires without refresher breaks §9's "MUST" to set it: the UAC then refreshes, as
  // it would without one. One below our Min-SE breaks §9 too (the UAS may not go below the
  // request's Min-SE): we keep our floor rather than refresh in a tight loop.
  return { seconds: Math.max(se.seconds, minSeconds), refresher: se.refresher === 'uas' ? 'remote' : 'local' };
}
