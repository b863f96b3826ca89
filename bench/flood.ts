/**
 * An unauthenticated INVITE flood: `invites` INVITEs without credentials at `rate`/s, round-robin
 * from `sockets` UDP sockets bound on another loopback address, each a new call (own Call-ID,
 * tag and branch), none ever ACKed. Counts every response that comes back, retransmissions
 * included, until `listenMs` after the last INVITE. Bounded in count and in time.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

export interface FloodOptions {
  host: string;
  port: number;
  /** Source address, e.g. 127.0.0.2. */
  from: string;
  sockets: number;
  invites: number;
  rate: number;
  /** How long to go on counting responses after the last INVITE. */
  listenMs: number;
  domain: string;
}

export interface FloodResult {
  sent: number;
  /** From the first INVITE to the last, seconds. */
  sendSeconds: number;
  /** Responses received, by status code. */
  responses: Record<number, number>;
  /** Datagrams that were not a SIP response. */
  other: number;
}

function invite(o: FloodOptions, port: number, run: string, i: number): Buffer {
  const sdp = `v=0\r\no=flood 1 1 IN IP4 ${o.from}\r\ns=-\r\nc=IN IP4 ${o.from}\r\nt=0 0\r\nm=audio 16000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
  return Buffer.from(
    `INVITE sip:15551234567@${o.domain} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP ${o.from}:${port};branch=z9hG4bK-${run}-${i};rport\r\n` +
      `Max-Forwards: 70\r\n` +
      `From: <sip:1000@${o.domain}>;tag=${run}-${i}\r\n` +
      `To: <sip:15551234567@${o.domain}>\r\n` +
      `Call-ID: ${run}-${i}@${o.from}\r\n` +
      `CSeq: 1 INVITE\r\n` +
      `Contact: <sip:1000@${o.from}:${port}>\r\n` +
      `Content-Type: application/sdp\r\n` +
      `Content-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`,
  );
}

export async function flood(o: FloodOptions): Promise<FloodResult> {
  const run = randomBytes(4).toString('hex');
  const responses: Record<number, number> = {};
  let other = 0;
  const sockets: Socket[] = [];
  try {
    for (let k = 0; k < o.sockets; k++) {
      const s = createSocket('udp4');
      s.on('message', (msg) => {
        // "SIP/2.0 407 ..."
        const code = msg.length > 11 && msg.toString('latin1', 0, 8) === 'SIP/2.0 ' ? Number(msg.toString('latin1', 8, 11)) : NaN;
        if (Number.isInteger(code)) responses[code] = (responses[code] ?? 0) + 1;
        else other++;
      });
      s.on('error', () => other++);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, o.from, () => resolve());
      });
      sockets.push(s);
    }
    const ports = sockets.map((s) => s.address().port);
    let sent = 0;
    const start = performance.now();
    const deadline = start + (o.invites / o.rate) * 3000 + 5000;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const due = Math.min(o.invites, Math.floor(((now - start) / 1000) * o.rate) + 1);
        for (; sent < due; sent++) {
          const k = sent % sockets.length;
          sockets[k]!.send(invite(o, ports[k]!, run, sent), o.port, o.host);
        }
        if (sent >= o.invites || now > deadline) {
          clearInterval(tick);
          resolve();
        }
      }, 5);
    });
    const sendSeconds = (performance.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, o.listenMs));
    return { sent, sendSeconds, responses, other };
  } finally {
    for (const s of sockets) s.close();
  }
}
