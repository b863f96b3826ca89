import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/**
 * The trunk's digest work per call (issue #16), in process: what auth.ts asks of DigestServer for
 * one SIPp call — the stateless pre-check of the INVITE without credentials (a 407 with a fresh
 * nonce), then for the INVITE with credentials the pre-check again (nonce MAC) and `verify`
 * (parse, nonce MAC, three hashes, replay table) — on parsed requests, SIPp's MD5 digest.
 *
 *   node --import tsx bench/app-digest.ts [N] [rounds] [dist …]
 *
 * Each dist runs in its own child process, the dists alternating round by round, so a change is
 * read against a baseline of the same run (e.g. /work/base-main/dist dist). Each child runs a
 * warm-up pass of N calls and then three, and reports its best: µs per call (challenge, then the
 * pre-check + verify of the credentials), for each round and the median of the rounds.
 */
const [n = '20000', rounds = '5', ...dists] = process.argv.slice(2);

if (process.env.APP_DIGEST_CHILD) {
  const dist = process.env.APP_DIGEST_CHILD;
  const N = Number(n);
  const digest = await import(pathToFileURL(`${dist}/digest/index.js`).href);
  const parser = await import(pathToFileURL(`${dist}/parser/index.js`).href);
  const server = new digest.DigestServer({
    secret: 'bench-secret-0123456789abcdef-xyz',
    realm: 'pbx.example.test',
    algorithms: ['MD5'],
    lookup: (u: string) => (u === '1000' ? { password: 'secret-1000' } : undefined),
  });
  const ctx = { source: '127.0.0.1' };
  const pass = async () => {
    const requests = Array.from({ length: N }, (_, i) =>
      parser.parseMessage(
        parser
          .createRequest({
            method: 'INVITE',
            uri: 'sip:5551234@pbx.example.test',
            from: `<sip:1000@pbx.example.test>;tag=${i}`,
            to: '<sip:5551234@pbx.example.test>',
            via: `SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-${i}`,
            callId: `${i}-bench@127.0.0.1`,
          })
          .toBytes(),
      ),
    );
    const t0 = performance.now();
    const challenges = requests.map((r: unknown) => server.challengeIfNoCredentials(r, ctx));
    const t1 = performance.now();
    const signed = requests.map((r: unknown, i: number) =>
      parser.parseMessage(new digest.DigestClient({ username: '1000', password: 'secret-1000' }).authorize(r, parser.parseMessage(challenges[i].toBytes())).toBytes()),
    );
    let ok = 0;
    const t2 = performance.now();
    for (const r of signed) {
      if (server.challengeIfNoCredentials(r, ctx) !== undefined) throw new Error('pre-check refused a signed request');
      if ((await server.verify(r, ctx)).kind === 'ok') ok++;
    }
    const t3 = performance.now();
    if (ok !== N) throw new Error(`only ${ok} of ${N} verified`);
    return { challenge: ((t1 - t0) * 1000) / N, verify: ((t3 - t2) * 1000) / N };
  };
  // A warm-up pass, then the best of three: what the code costs, less what the shared machine added.
  await pass();
  const fs = [await pass(), await pass(), await pass()];
  console.log(JSON.stringify({ challenge: Math.min(...fs.map((f) => f.challenge)), verify: Math.min(...fs.map((f) => f.verify)) }));
} else {
  const results = new Map<string, Array<{ challenge: number; verify: number }>>();
  for (let r = 0; r < Number(rounds); r++) {
    for (const dist of r % 2 === 0 ? dists : [...dists].reverse()) {
      const out = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, n], { env: { ...process.env, APP_DIGEST_CHILD: dist }, encoding: 'utf8' });
      if (out.status !== 0) throw new Error(out.stderr);
      const f = JSON.parse(out.stdout.trim().split('\n').pop()!);
      (results.get(dist) ?? results.set(dist, []).get(dist)!).push(f);
      console.log(`round ${r} ${dist}: challenge ${f.challenge.toFixed(2)} µs, pre-check + verify ${f.verify.toFixed(2)} µs`);
    }
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  for (const [dist, fs] of results) {
    console.log(`${dist}: median challenge ${median(fs.map((f) => f.challenge)).toFixed(2)} µs, pre-check + verify ${median(fs.map((f) => f.verify)).toFixed(2)} µs per call`);
  }
}
