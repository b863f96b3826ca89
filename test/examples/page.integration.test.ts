import { createHash } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { dial, http, TOKEN, trunkWithGateway, until, type TrunkSetup } from './page-harness.js';

const setups: TrunkSetup[] = [];
const open: IncomingMessage[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) r.destroy();
  await Promise.all(setups.splice(0).map((s) => s.stop()));
});

async function trunk(): Promise<TrunkSetup> {
  const s = await trunkWithGateway({ capture: { enabled: true } });
  setups.push(s);
  return s;
}

interface Stream {
  status: number;
  headers: IncomingMessage['headers'];
  /** Everything received so far. */
  text(): string;
  /** The `call` events' JSON so far. */
  events(): any[];
}

function stream(s: TrunkSetup, path: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: s.trunk.http.port, path, headers }, (res) => {
      open.push(res);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('error', () => undefined);
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        text: () => text,
        events: () => [...text.matchAll(/^event: call\ndata: (.*)\n\n/gm)].map((m) => JSON.parse(m[1]!)),
      });
    });
    req.on('error', reject);
  });
}

describe('the live calls page over HTTP', () => {
  it('GET / serves one self-contained page, its script and style allowed by hash and nothing else', async () => {
    const s = await trunk();
    const res = await http(s, '/', null);
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html; charset=utf-8');
    const raw = await fetch(`http://127.0.0.1:${s.trunk.http.port}/`);
    const csp = raw.headers.get('content-security-policy')!;
    const script = /<script>([\s\S]*)<\/script>/.exec(res.text)![1]!;
    const style = /<style>([\s\S]*)<\/style>/.exec(res.text)![1]!;
    const sha = (x: string) => `'sha256-${createHash('sha256').update(x).digest('base64')}'`;
    expect(csp).toContain(`script-src ${sha(script)};`);
    expect(csp).toContain(`style-src ${sha(style)};`);
    expect(csp).toContain(`default-src 'none'`);
    expect(csp).toContain(`connect-src 'self'`);
    // Nothing loaded from anywhere else: no src= or href= but the empty data: icon.
    expect([...res.text.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1])).toEqual(['data:,']);
    // The one URL in it is the SVG namespace, a name, never fetched.
    expect([...res.text.matchAll(/https?:\/\/[^'"\s]*/g)].map((m) => m[0])).toEqual(['http://www.w3.org/2000/svg']);
    // The page holds no data: it asks for the token, and uses it for the API.
    expect(res.text).not.toContain(TOKEN);
  });

  it('GET /v1.0/events needs the token (header or ?token=) and streams each change of a call as its JSON', async () => {
    const s = await trunk();
    expect((await http(s, '/v1.0/events', null)).status).toBe(401);
    expect((await http(s, '/v1.0/events?token=wrong', null)).status).toBe(401);
    // ?token= is for the event stream only (EventSource cannot send headers).
    expect((await http(s, `/v1.0/calls?token=${TOKEN}`, null)).status).toBe(401);
    const byQuery = await stream(s, `/v1.0/events?token=${encodeURIComponent(TOKEN)}`);
    const byHeader = await stream(s, '/v1.0/events', { authorization: `Bearer ${TOKEN}` });
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(byHeader.status).toBe(200);
    const c = dial(s, '+4930123');
    await c.answered;
    await c.call.hangup();
    for (const st of [byQuery, byHeader]) {
      // The last change: the relayed BYE answered, after the hangup.
      const events = await until(() => (st.events().some((e) => e.relayed_bye === 'answered') ? st.events() : undefined), 'the last event');
      const states = events.map((e) => e.status);
      expect(states[0]).toBe('dialing');
      expect(states).toContain('answered');
      expect(new Set(events.map((e) => e.id)).size).toBe(1);
      // The same JSON the calls API serves.
      const api = (await http(s, `/v1.0/calls/${events[0].id}`)).json;
      expect(events.at(-1)).toEqual(api);
    }
    expect(byQuery.text().startsWith('retry: 2000\n\n')).toBe(true);
  });

  it('bounds the streams open (503 beyond) and ends them when the trunk stops', async () => {
    const s = await trunk();
    const streams: Stream[] = [];
    for (let i = 0; i < 32; i++) streams.push(await stream(s, `/v1.0/events?token=${TOKEN}`));
    expect(streams.every((x) => x.status === 200)).toBe(true);
    const refused = await http(s, `/v1.0/events?token=${TOKEN}`, null);
    expect(refused).toMatchObject({ status: 503, json: { error: { code: 'busy' } } });
    const ended = Promise.all(open.map((r) => new Promise((ok) => r.once('close', ok))));
    await s.trunk.stop();
    await ended;
  });
});
