import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The RFC 4475/5118 corpus and digest vectors, kept in the repository (origin: test/fixtures/conformance/README.md). */
export const CONFORMANCE_DIR = resolve(here, '../fixtures/conformance');

export interface ManifestEntry {
  file: string;
  section: string | null;
  title?: string;
  expect: 'valid' | 'invalid' | 'semantic' | 'unreferenced';
  expected: Record<string, unknown>;
  reaction?: {
    response_code?: number | null;
    alternative_response_codes?: number[];
    role?: string;
    action?: string;
    transport?: string;
    text?: string;
  };
  bytes: { sha256: string; header_section_terminated?: boolean };
}

export function loadManifest(suite: 'rfc4475' | 'rfc5118'): ManifestEntry[] {
  return JSON.parse(readFileSync(join(CONFORMANCE_DIR, suite, 'manifest.json'), 'utf8')) as ManifestEntry[];
}

/** Raw bytes of a corpus file, checked against the manifest's sha256. */
export function loadMessage(suite: 'rfc4475' | 'rfc5118', entry: ManifestEntry): Buffer {
  const bytes = readFileSync(join(CONFORMANCE_DIR, suite, entry.file));
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (sum !== entry.bytes.sha256) throw new Error(`${entry.file}: sha256 mismatch, the checkout is corrupted`);
  return bytes;
}

/**
 * RFC 5118's files are LF-only renderings, not wire format (see the corpus README):
 * LF → CRLF, add the missing empty line, and — where the RFC's own Content-Length
 * exceeds the body (4.6 declares 268 for 251 octets) — restate it, because a
 * datagram shorter than its Content-Length must be rejected (§18.3).
 */
export function rfc5118WireForm(raw: Buffer): Buffer {
  let text = raw.toString('latin1').replace(/\r?\n/g, '\r\n');
  let sep = text.indexOf('\r\n\r\n');
  if (sep < 0) {
    text = text.endsWith('\r\n') ? text + '\r\n' : text + '\r\n\r\n';
    sep = text.indexOf('\r\n\r\n');
  }
  const bodyLen = text.length - (sep + 4);
  const head = text.slice(0, sep).replace(/^(Content-Length|l)[ \t]*:[ \t]*(\d+)/im, (line, name: string, n: string) =>
    Number(n) > bodyLen ? `${name}: ${bodyLen}` : line,
  );
  return Buffer.from(head + text.slice(sep), 'latin1');
}
