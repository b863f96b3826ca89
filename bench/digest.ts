import { createHash } from 'node:crypto';
import { DigestClient, DigestServer } from '../dist/digest/index.js';
import { createRequest, parseMessage, type SipRequest } from '../dist/parser/index.js';
import { measure, measureAsync, table } from './harness.js';

export async function benchDigest(): Promise<string> {
  const rows: Array<[string, number, string]> = [];
  const sample = 'alice:atlanta.example.com:zanzibar-9';
  const base = measure(
    [
      { name: 'baseline: one MD5 of a short string', run: () => createHash('md5').update(sample).digest('hex') },
      { name: 'baseline: one SHA-256 of a short string', run: () => createHash('sha256').update(sample).digest('hex') },
    ],
    { rounds: 3 },
  );
  const md5 = base.get('baseline: one MD5 of a short string')!;
  const sha = base.get('baseline: one SHA-256 of a short string')!;
  rows.push(['baseline: one MD5 of a short string', md5, '']);
  rows.push(['baseline: one SHA-256 of a short string', sha, '']);

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    const server = new DigestServer({
      secret: 'bench-secret-0123456789abcdef0123',
      realm: 'demo.trunk.sipkit.test',
      algorithms: [algorithm],
      lookup: (u) => (u === '1000' ? { password: 'sipkit-demo' } : undefined),
      throttle: false,
      ncWindow: 1e9,
    });
    const req = createRequest({
      method: 'INVITE',
      uri: 'sip:+15551234567@demo.trunk.sipkit.test',
      from: '<sip:1000@demo.trunk.sipkit.test>',
      to: '<sip:+15551234567@demo.trunk.sipkit.test>',
      via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbench',
    });
    const ch = measure([{ name: 'challenge', run: () => server.challenge(req) }], { rounds: 3 }).get('challenge')!;
    const hash = algorithm === 'MD5' ? md5 : sha;
    rows.push([`${algorithm}: challenges (407 built)`, ch, `${(hash / ch).toFixed(1)} hash-times each`]);
    // Pre-sign requests with increasing nc, so every verification takes the success path.
    const client = new DigestClient({ username: '1000', password: 'sipkit-demo' });
    const first = client.authorize(req, server.challenge(req));
    const n = 3000;
    const signed: SipRequest[] = [];
    for (let i = 0; i < n * 4 + 200; i++) signed.push(parseMessage(client.sign(first.clone()).toBytes()) as SipRequest);
    const vr = await measureAsync(async (i) => {
      const r = await server.verify(signed[i]!);
      if (r.kind !== 'ok') throw new Error('bench verification failed: ' + JSON.stringify(r.kind));
    }, n);
    rows.push([`${algorithm}: verifications (success path)`, vr, `${(hash / vr).toFixed(1)} hash-times each (3 digest hashes + 1 HMAC)`]);
  }
  return table('digest (ratios against one raw hash measured in this run)', rows);
}
