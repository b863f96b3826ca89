import { formatReason, SipError, type SipResponse } from '../parser/index.js';
import type { TransportAddress } from '../transport/index.js';
import type { Call } from './call-base.js';
import type { ReasonInit } from './call-types.js';
import type { IncomingCall } from './incoming-call.js';
import { Dialog } from './dialog.js';
import type { UserAgent } from './user-agent.js';

/**
 * A confirmed dialog as plain JSON data: everything needed to send a request in it
 * (RFC 3261 §12.2.1.1) without the call that built it — after a restart, say.
 */
export interface DialogSnapshot {
  callId: string;
  localTag: string;
  remoteTag: string;
  role: 'uac' | 'uas';
  /** From / To of requests we send (name-addr, without tag). */
  localUri: string;
  remoteUri: string;
  /** The peer's Contact and the route set, in the order requests carry it. */
  remoteTarget: string;
  routeSet: string[];
  /** The last CSeq number we used in the dialog (0: none yet). */
  localSeq: number;
  /** Our Contact: it names the transport the dialog runs over (`;transport=tcp`). */
  localContact: string;
  secure: boolean;
  /** Where the peer's messages came from (reaches a NATed peer), if known. */
  peer: TransportAddress | undefined;
}

/** The snapshot of a dialog. */
export function snapshotOf(dialog: Dialog): DialogSnapshot {
  return {
    callId: dialog.callId,
    localTag: dialog.localTag,
    remoteTag: dialog.remoteTag,
    role: dialog.role,
    localUri: dialog.localUri,
    remoteUri: dialog.remoteUri,
    remoteTarget: dialog.remoteTarget,
    routeSet: dialog.routeSet.slice(),
    localSeq: dialog.localSeq,
    localContact: dialog.localContact,
    secure: dialog.secure,
    peer: dialog.peerAddress ? { address: dialog.peerAddress.address, port: dialog.peerAddress.port } : undefined,
  };
}

/** The confirmed dialog of an answered call, as a snapshot (undefined before answer or after the end). */
export function callSnapshot(call: Call): DialogSnapshot | undefined {
  const d = call.dialog;
  return d && d.state === 'confirmed' ? snapshotOf(d) : undefined;
}

/**
 * The dialog an incoming call is about to confirm with its 2xx (§12.1.1): known from the
 * INVITE and our tag before the 2xx leaves, so it can be written down first.
 */
export function answerSnapshot(ua: UserAgent, call: IncomingCall): DialogSnapshot {
  const src = call.source;
  const d = call.dialog ?? Dialog.fromUas(call.invite, call.localTag, src.address, ua.contactFor({ ...src.address, transport: src.transport.protocol }));
  return { ...snapshotOf(d), peer: { address: src.address.address, port: src.address.port } };
}

const MAX_FIELD = 8 * 1024;

function text(v: unknown, field: string, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0) || v.length > MAX_FIELD) throw new SipError('BAD_DIALOG_SNAPSHOT', `dialog snapshot: ${field} must be a string`);
  return v;
}

/** Check data read back (from a journal file) is a snapshot; throws SipError `BAD_DIALOG_SNAPSHOT`. */
export function parseDialogSnapshot(v: unknown): DialogSnapshot {
  if (typeof v !== 'object' || v === null) throw new SipError('BAD_DIALOG_SNAPSHOT', 'dialog snapshot: not an object');
  const o = v as Record<string, unknown>;
  const routeSet = o.routeSet;
  if (!Array.isArray(routeSet) || routeSet.length > 64) throw new SipError('BAD_DIALOG_SNAPSHOT', 'dialog snapshot: routeSet must be an array');
  const seq = o.localSeq;
  // CSeq numbers are below 2^31 (§8.1.1.5).
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= 2 ** 31) throw new SipError('BAD_DIALOG_SNAPSHOT', 'dialog snapshot: localSeq must be a CSeq number');
  let peer: TransportAddress | undefined;
  if (o.peer !== undefined && o.peer !== null) {
    const p = o.peer as Record<string, unknown>;
    if (typeof p !== 'object' || typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      throw new SipError('BAD_DIALOG_SNAPSHOT', 'dialog snapshot: peer must be an address and port');
    }
    peer = { address: text(p.address, 'peer.address'), port: p.port };
  }
  if (o.role !== 'uac' && o.role !== 'uas') throw new SipError('BAD_DIALOG_SNAPSHOT', 'dialog snapshot: role must be uac or uas');
  return {
    callId: text(o.callId, 'callId'),
    localTag: text(o.localTag, 'localTag'),
    remoteTag: text(o.remoteTag, 'remoteTag', true),
    role: o.role,
    localUri: text(o.localUri, 'localUri'),
    remoteUri: text(o.remoteUri, 'remoteUri'),
    remoteTarget: text(o.remoteTarget, 'remoteTarget'),
    routeSet: routeSet.map((r, i) => text(r, `routeSet[${i}]`)),
    localSeq: seq,
    localContact: text(o.localContact, 'localContact'),
    secure: o.secure === true,
    peer,
  };
}

/** A confirmed Dialog rebuilt from a snapshot. */
export function dialogFromSnapshot(s: DialogSnapshot): Dialog {
  return new Dialog({
    callId: s.callId,
    localTag: s.localTag,
    remoteTag: s.remoteTag,
    role: s.role,
    state: 'confirmed',
    localSeq: s.localSeq,
    remoteSeq: undefined,
    localUri: s.localUri,
    remoteUri: s.remoteUri,
    remoteTarget: s.remoteTarget,
    routeSet: s.routeSet.slice(),
    secure: s.secure,
    peerAddress: s.peer,
    localContact: s.localContact,
  });
}

export interface SnapshotByeOptions {
  /** RFC 3326 Reason for the BYE (a restart: `{ protocol: 'Q.850', cause: 41 }`). */
  reason?: ReasonInit;
  /**
   * CSeq of the BYE. Default: the snapshot's `localSeq` + 1. It must be above every CSeq
   * used in the dialog since the snapshot was taken, or the peer answers 500 (§12.2.2).
   */
  cseq?: number;
}

/**
 * End a dialog known only from its snapshot: a BYE built as the dialog would build it
 * (§12.2.1.1, §15.1.1), sent by `ua` without a live call. Resolves with the final response
 * — a synthesized 408 (Timer F) or 503 (not sendable) included. Rejects only with a SipError
 * when the snapshot's remote target or route set is not a usable URI.
 */
export function byeFromSnapshot(ua: UserAgent, snapshot: DialogSnapshot, options: SnapshotByeOptions = {}): Promise<SipResponse> {
  const d = dialogFromSnapshot(snapshot);
  const cseq = options.cseq ?? Math.min(snapshot.localSeq + 1, 2 ** 31 - 1);
  return Promise.resolve()
    .then(() => {
      const bye = d.createRequest('BYE', { cseq, headers: options.reason ? [['Reason', formatReason(options.reason)]] : [] });
      return ua.sendInDialog(d, bye);
    })
    .catch((err: unknown) => {
      throw err instanceof SipError ? err : new SipError('BAD_DIALOG_SNAPSHOT', `cannot send a BYE in this dialog: ${(err as Error).message}`);
    });
}
