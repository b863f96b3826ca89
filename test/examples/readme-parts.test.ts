import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { tsBlocks } from '../package/readme-blocks.js';

// The README's "The trunk server, part by part" blocks are servers built from the trunk's parts:
// each is type-checked as a file next to them (examples/trunk-server/), as a user who copied the
// parts would have it.

const root = fileURLToPath(new URL('../../', import.meta.url));
const SECTION = 'The trunk server, part by part';
const PARTS = ['auth', 'routing', 'media', 'records', 'restart', 'http-api', 'shutdown'];

function typeCheck(files: Map<string, string>): string[] {
  const configPath = path.join(root, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath).options, noEmit: true };
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

const fileFor = (line: number) => path.join(root, 'examples', 'trunk-server', `readme-line-${line}.ts`);

describe(`README.md "${SECTION}"`, () => {
  const blocks = tsBlocks(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).filter((b) => b.section === SECTION);

  it('has a short server composed from at least two parts', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    for (const b of blocks) {
      const used = PARTS.filter((p) => b.code.includes(`from './${p}.js'`));
      expect(used.length, `README line ${b.line}`).toBeGreaterThanOrEqual(2);
      expect(b.code.split('\n').length, `README line ${b.line}`).toBeLessThanOrEqual(35);
    }
  });

  it('every block type-checks next to the parts', () => {
    const files = new Map(blocks.map((b) => [fileFor(b.line), b.code + '\nexport {};\n']));
    expect(typeCheck(files)).toEqual([]);
  });

  it('a block using a part wrongly is reported (the check is real)', () => {
    const b = blocks[0]!;
    const broken = b.code.replace('createRouter(domains)', 'createRouter(domains, 5)');
    expect(broken).not.toBe(b.code);
    expect(typeCheck(new Map([[fileFor(b.line), broken + '\nexport {};\n']])).join('\n')).toMatch(/Expected 1 argument/);
  });
});
