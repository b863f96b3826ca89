import { createRequest, createResponse, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork, type TestTransport, type NetworkConditions } from '../../src/transport/index.js';
import {
  TransactionLayer,
  type ClientTransaction,
  type ClientTransactionUser,
  type InviteServerTransaction,
  type MessageSource,
  type ServerTransaction,
  type TransactionLayerOptions,
  type TransactionUser,
} from '../../src/transaction/index.js';

export const T1 = 500;

/** A TU that records everything and can answer with a policy. */
export class RecordingUser implements TransactionUser {
  requests: Array<{ req: SipRequest; tx: ServerTransaction; source: MessageSource }> = [];
  acks: SipRequest[] = [];
  cancels: Array<{ invite: InviteServerTransaction; cancel: SipRequest }> = [];
  strays: SipResponse[] = [];
  /** Answer each new request with this status (undefined: do not answer). */
  answer: ((req: SipRequest) => number | undefined) | undefined;

  onRequest(req: SipRequest, tx: ServerTransaction, source: MessageSource): void {
    this.requests.push({ req, tx, source });
    const status = this.answer?.(req);
    if (status !== undefined) tx.respond(createResponse(req, status));
  }
  onAck(ack: SipRequest): void {
    this.acks.push(ack);
  }
  onCancel(invite: InviteServerTransaction, cancel: SipRequest): void {
    this.cancels.push({ invite, cancel });
  }
  onStrayResponse(res: SipResponse): void {
    this.strays.push(res);
  }
}

export class ClientRecorder implements ClientTransactionUser {
  responses: SipResponse[] = [];
  timeouts = 0;
  transportErrors = 0;
  terminated = 0;
  onResponse(res: SipResponse): void {
    this.responses.push(res);
  }
  onTimeout(): void {
    this.timeouts++;
  }
  onTransportError(): void {
    this.transportErrors++;
  }
  onTerminated(): void {
    this.terminated++;
  }
  get statuses(): number[] {
    return this.responses.map((r) => r.status);
  }
  get finals(): SipResponse[] {
    return this.responses.filter((r) => r.status >= 200);
  }
}

export interface Pair {
  clock: FakeClock;
  net: TestNetwork;
  a: TransactionLayer;
  b: TransactionLayer;
  aUser: RecordingUser;
  bUser: RecordingUser;
  aT: TestTransport;
  bT: TestTransport;
}

/** Two transaction layers, A (10.0.0.1) and B (10.0.0.2), on a test network. */
export function pair(
  options: { seed?: number; reliable?: boolean; conditions?: NetworkConditions; layer?: Partial<TransactionLayerOptions> } = {},
): Pair {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: options.seed ?? 1, ...options.conditions });
  const aT = net.transport('10.0.0.1', 5060, { reliable: options.reliable });
  const bT = net.transport('10.0.0.2', 5060, { reliable: options.reliable });
  const aUser = new RecordingUser();
  const bUser = new RecordingUser();
  const a = new TransactionLayer({ transports: [aT], user: aUser, clock, ...options.layer });
  const b = new TransactionLayer({ transports: [bT], user: bUser, clock, ...options.layer });
  return { clock, net, a, b, aUser, bUser, aT, bT };
}

let n = 0;
export function request(method: string, uri = 'sip:bob@10.0.0.2'): SipRequest {
  n++;
  return createRequest({
    method,
    uri,
    from: '<sip:alice@10.0.0.1>',
    to: '<sip:bob@10.0.0.2>',
    callId: `call-${n}@10.0.0.1`,
    cseq: 1,
    contact: '<sip:alice@10.0.0.1:5060>',
  });
}

export function send(p: Pair, method: string, to = { address: '10.0.0.2', port: 5060 }): { tx: ClientTransaction; rec: ClientRecorder; req: SipRequest } {
  const rec = new ClientRecorder();
  const req = request(method);
  const tx = p.a.sendRequest(req, to, rec);
  return { tx, rec, req };
}
