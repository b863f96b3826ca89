import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { tsBlocks } from './readme-blocks.js';

// Every ```ts block of README.md is type-checked against the sources (tsconfig.json maps
// `sipkit/*` to src/), so the README cannot drift from the API. The "Using sipkit in your
// service" blocks compile as they stand; the tour's are fragments, given declarations for the
// names they take as read (a datagram, a socket, a user database …).

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

const FRAGMENT_INPUTS: Record<string, string> = {
  datagram: 'declare const datagram: Buffer;',
  socket: 'declare const socket: { send(bytes: Uint8Array): void };',
  db: "declare const db: { user(name: string, realm: string): Promise<{ password: string } | undefined> };",
  invite: "declare const invite: import('sipkit/parser').SipRequest;",
  proxyAuthRequired407: "declare const proxyAuthRequired407: import('sipkit/parser').SipResponse;",
  req: "declare const req: import('sipkit/parser').SipRequest;",
  sdp: 'declare const sdp: string;',
  offer: 'declare const offer: string;',
  transports: "declare const transports: import('sipkit/transport').Transport[];",
  auth: "declare const auth: import('sipkit/digest').DigestServer;",
};

/** Declarations for the names a tour fragment uses but neither defines nor imports. */
function inputsOf(code: string): string {
  return Object.entries(FRAGMENT_INPUTS)
    .filter(([name]) => new RegExp(`\\b${name}\\b`).test(code) && !new RegExp(`(const|let)\\s+${name}\\b|import[^;]*\\b${name}\\b`).test(code))
    .map(([, decl]) => decl)
    .join('\n');
}

function typeCheck(files: Map<string, string>): string[] {
  const configPath = path.join(root, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath).options, noUnusedLocals: false, noEmit: true };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => files.get(path.resolve(f)) ?? read(f);
  host.fileExists = (f) => files.has(path.resolve(f)) || exists(f);
  host.getSourceFile = (f, lang, onError) => {
    const text = files.get(path.resolve(f));
    return text !== undefined ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, onError);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return [...files.keys()].flatMap((f) => {
    const sf = program.getSourceFile(f)!;
    return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)].map((d) => {
      const { line } = d.start !== undefined ? sf.getLineAndCharacterOfPosition(d.start) : { line: 0 };
      return `${path.basename(f)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
  });
}

describe('README.md code', () => {
  const blocks = tsBlocks(readme);
  const service = blocks.filter((b) => b.section === 'Using sipkit in your service');
  const tour = blocks.filter((b) => b.section === 'A short tour');

  it('has the tour and the service examples', () => {
    expect(tour.length).toBeGreaterThanOrEqual(5);
    expect(service.length).toBeGreaterThanOrEqual(2);
    expect(service.map((b) => b.code).join('\n')).toContain('DigestServer');
  });

  it('every block type-checks (service blocks as they stand, tour blocks with their inputs declared)', () => {
    const files = new Map<string, string>();
    // Inside the repository (ESM package, tsconfig paths): each block is its own module.
    for (const b of service) files.set(path.join(root, 'test', 'package', `readme-line-${b.line}.ts`), b.code + '\nexport {};\n');
    for (const b of tour) files.set(path.join(root, 'test', 'package', `readme-line-${b.line}.ts`), `${inputsOf(b.code)}\n${b.code}\nexport {};\n`);
    expect(typeCheck(files)).toEqual([]);
  });

  it('routes only to IP literals and uses the domain as the digest realm (sipkit does no DNS yet)', () => {
    for (const b of [...tour, ...service]) {
      for (const [, host] of b.code.matchAll(/uri: [`']sip:[^@`']*@([^:`'>;]+)/g)) expect(host, `README line ${b.line}`).toMatch(/^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\])$/i);
      expect(b.code, `README line ${b.line}`).not.toMatch(/realm: \(?req\)? => req\.requestUri\.toString\(\)/);
    }
  });

  it('a type error in a block is reported (the check is real)', () => {
    const file = path.join(root, 'test', 'package', 'readme-broken.ts');
    const broken = service[0]!.code.replace("auth: { username: '1000'", "auth: { user: '1000'");
    expect(broken).not.toBe(service[0]!.code);
    expect(typeCheck(new Map([[file, broken + '\nexport {};\n']])).length).toBeGreaterThan(0);
  });
});
