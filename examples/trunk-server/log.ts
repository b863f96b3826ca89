export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  (level: Level, event: string, fields?: Record<string, unknown>): void;
}

/** One line per event: time, level, event name, key=value fields. */
export function createLogger(min: Level, write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Logger {
  return (level, event, fields = {}) => {
    if (ORDER[level] < ORDER[min]) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${event}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      line += ` ${k}=${/[\s"]/.test(s) ? JSON.stringify(s) : s}`;
    }
    write(line);
  };
}

/** A B2BUA or transaction-layer `trace` hook writing every SIP message sent and received as a debug line. */
export function sipTrace(log: Logger) {
  return (direction: 'in' | 'out', bytes: Uint8Array, remote: { address: string; port: number }, transport: { protocol: string }): void =>
    log('debug', direction === 'in' ? 'sip.recv' : 'sip.send', { transport: transport.protocol, peer: `${remote.address}:${remote.port}`, message: Buffer.from(bytes).toString() });
}
