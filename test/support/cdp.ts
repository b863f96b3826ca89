// A headless Chromium driven over the DevTools protocol with a small hand-written WebSocket
// client (RFC 6455): no dependency, Node 20 has no WebSocket client without a flag.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = 'chromium';
export const hasChromium = spawnSync(CHROMIUM, ['--version']).status === 0;

/** A WebSocket to a DevTools endpoint: one JSON message per text frame. */
class WebSocketClient {
  private buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  onMessage: (text: string) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(private readonly socket: Socket) {}

  static open(url: string, timeoutMs = 10_000): Promise<WebSocketClient> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no WebSocket handshake with ${url} in ${timeoutMs} ms`))), timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        clearTimeout(timer);
        const text = head.subarray(0, end).toString('latin1');
        // RFC 6455 §4.1: 101, and the accept value derived from our key.
        if (!/^HTTP\/1\.1 101 /.test(text) || !new RegExp(`^sec-websocket-accept:\\s*${accept.replace(/[+/=]/g, '\\$&')}\\s*$`, 'im').test(text)) {
          socket.destroy();
          return reject(new Error(`WebSocket handshake refused: ${text}`));
        }
        const ws = new WebSocketClient(socket);
        socket.on('data', (chunk: Buffer) => ws.receive(chunk));
        socket.on('close', () => ws.onClose());
        resolve(ws);
        ws.receive(head.subarray(end + 4));
      };
      socket.on('data', onData);
      socket.on('error', (e) => (clearTimeout(timer), reject(e)));
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  }

  /** A client frame: always masked (RFC 6455 §5.3). */
  private frame(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    if (len >= 126 && len < 65536) {
      head[0] = 0x80 | opcode;
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else if (len >= 65536) {
      head[0] = 0x80 | opcode;
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  send(text: string): void {
    this.frame(0x1, Buffer.from(text));
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      const b0 = this.buffer[0]!;
      const b1 = this.buffer[1]!;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        at = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskAt = at;
      if (masked) at += 4;
      if (this.buffer.length < at + len) return;
      let payload = this.buffer.subarray(at, at + len);
      if (masked) payload = Buffer.from(payload.map((x, i) => x ^ this.buffer[maskAt + (i & 3)]!));
      this.buffer = this.buffer.subarray(at + len);
      const opcode = b0 & 0x0f;
      if (opcode === 0x8) return void this.socket.end();
      if (opcode === 0x9) {
        this.frame(0xa, Buffer.from(payload));
        continue;
      }
      if (opcode === 0xa) continue;
      this.fragments.push(Buffer.from(payload));
      if (b0 & 0x80) {
        const text = Buffer.concat(this.fragments).toString('utf8');
        this.fragments = [];
        this.onMessage(text);
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A DevTools protocol session with one page. */
export class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<(method: string, params: any) => void>();

  constructor(private readonly ws: WebSocketClient) {
    ws.onMessage = (text) => {
      const msg = JSON.parse(text) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: unknown };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
      } else if (msg.method) for (const l of this.listeners) l(msg.method, msg.params);
    };
    ws.onClose = () => {
      for (const p of this.pending.values()) p.reject(new Error('DevTools connection closed'));
      this.pending.clear();
    };
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The next event `method` (matching `where`), within `timeoutMs`. */
  once(method: string, where: (params: any) => boolean = () => true, timeoutMs = 15_000): Promise<any> {
    return new Promise((resolve, reject) => {
      const l = (m: string, p: any) => {
        if (m !== method || !where(p)) return;
        this.listeners.delete(l);
        clearTimeout(timer);
        resolve(p);
      };
      const timer = setTimeout(() => (this.listeners.delete(l), reject(new Error(`no ${method} in ${timeoutMs} ms`))), timeoutMs);
      this.listeners.add(l);
    });
  }

  on(fn: (method: string, params: any) => void): void {
    this.listeners.add(fn);
  }

  /** Evaluate `expression` in the page and return its value (awaiting a promise). */
  async evaluate<T = any>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Evaluate `expression` every 50 ms until it is truthy; at most `tries` times. */
  async waitFor<T = any>(expression: string, what: string, tries = 300): Promise<T> {
    for (let i = 0; i < tries; i++) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  close(): void {
    this.ws.close();
  }
}

export interface Browser {
  /** A session with the page Chromium opened (about:blank). */
  page: Cdp;
  /** What Chromium wrote on stderr (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

/** Start a headless Chromium with a fresh profile and attach to its first page. */
export async function launchChromium(timeoutMs = 60_000): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'sipkit-chromium-'));
  const proc: ChildProcess = spawn(
    CHROMIUM,
    ['--headless=new', '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--window-size=1400,900', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const close = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
    // Chromium's helper processes can still be writing the profile as the main one exits.
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const wsUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Chromium did not start in ${timeoutMs} ms:\n${stderr.slice(-2000)}`)), timeoutMs);
      proc.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-50_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`Chromium exited (${code}):\n${stderr.slice(-2000)}`))));
    });
    const { host } = new URL(wsUrl);
    const targets = (await (await fetch(`http://${host}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
    const target = targets.find((t) => t.type === 'page');
    if (!target) throw new Error(`no page target: ${JSON.stringify(targets)}`);
    const page = new Cdp(await WebSocketClient.open(target.webSocketDebuggerUrl));
    return {
      page,
      log: () => stderr,
      close: async () => {
        page.close();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
