// The public API report: for each package entry, every export as its published declaration
// (what `.d.ts` users see: `@internal` members stripped, private members and comments left out).
// Committed under api/; test/package/api-report.test.ts fails when the surface changes and the
// report was not regenerated, so every API change shows up in review.
//
//   npm run api:report              rewrite api/*.api.md
//   tsx scripts/api-report.ts       compare only: exit 1 and name the entries that differ
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Package subpath → its source entry (the same entries as tsup.config.ts and package.json exports). */
export const ENTRIES: Readonly<Record<string, string>> = {
  sipkit: 'src/index.ts',
  'sipkit/parser': 'src/parser/index.ts',
  'sipkit/digest': 'src/digest/index.ts',
  'sipkit/transport': 'src/transport/index.ts',
  'sipkit/transaction': 'src/transaction/index.ts',
  'sipkit/dialog': 'src/dialog/index.ts',
  'sipkit/b2bua': 'src/b2bua/index.ts',
  'sipkit/resolver': 'src/resolver/index.ts',
  'sipkit/testing': 'src/testing/index.ts',
};

/** api/<file> for an entry: api/sipkit.api.md, api/parser.api.md … */
export function reportFile(entry: string): string {
  return `${entry === 'sipkit' ? 'sipkit' : entry.slice('sipkit/'.length)}.api.md`;
}

function compilerOptions(root: string): ts.CompilerOptions {
  const configPath = path.join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath).options;
}

function failOn(diagnostics: readonly ts.Diagnostic[], what: string): void {
  if (diagnostics.length === 0) return;
  const host: ts.FormatDiagnosticsHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n' };
  throw new Error(`${what}:\n${ts.formatDiagnostics(diagnostics, host)}`);
}

const PRIVATE_MEMBER = /^\s+(?:private (?:static )?(?:readonly )?[\w$]+\??;|#private;)$/;

/** Render each entry's report. Throws if the stripped declarations do not type-check. */
export function apiReports(root: string): Map<string, string> {
  const options = compilerOptions(root);
  const entries = Object.entries(ENTRIES).map(([name, file]) => [name, path.join(root, file)] as const);

  // 1. Declaration emit, in memory, as the published build does it (stripInternal).
  const emitted = new Map<string, string>();
  const emitOptions: ts.CompilerOptions = { ...options, noEmit: false, declaration: true, emitDeclarationOnly: true, stripInternal: true, declarationMap: false, outDir: undefined, rootDir: root };
  const source = ts.createProgram(entries.map(([, file]) => file), emitOptions);
  failOn(ts.getPreEmitDiagnostics(source), 'sources');
  const emit = source.emit(undefined, (file, text) => emitted.set(path.resolve(file), text), undefined, true);
  failOn(emit.diagnostics, 'declaration emit');

  // 2. A program over those declarations: what a user's compiler sees.
  const dtsOptions: ts.CompilerOptions = { ...options, noEmit: true, skipLibCheck: false, paths: undefined };
  const host = ts.createCompilerHost(dtsOptions);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  // Only the declarations exist for it: the sources would win module resolution otherwise.
  const srcDir = path.join(root, 'src') + path.sep;
  const hidden = (file: string) => path.resolve(file).startsWith(srcDir) && !emitted.has(path.resolve(file));
  host.readFile = (file) => emitted.get(path.resolve(file)) ?? (hidden(file) ? undefined : read(file));
  host.fileExists = (file) => emitted.has(path.resolve(file)) || (!hidden(file) && exists(file));
  const dtsOf = (file: string) => file.replace(/\.ts$/, '.d.ts');
  const program = ts.createProgram(entries.map(([, file]) => dtsOf(file)), dtsOptions, host);
  failOn(
    program.getSourceFiles().flatMap((sf) => (emitted.has(path.resolve(sf.fileName)) ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [])),
    'stripped declarations (an @internal member is still needed by a public type?)',
  );
  const checker = program.getTypeChecker();
  const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });

  const exportsOf = (file: string) => {
    const sf = program.getSourceFile(dtsOf(file));
    const mod = sf && checker.getSymbolAtLocation(sf);
    if (!sf || !mod) throw new Error(`no module for ${file}`);
    return checker
      .getExportsOfModule(mod)
      .map((sym) => ({ name: sym.name, target: sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  };
  const render = (name: string, target: ts.Symbol): string => {
    const parts: string[] = [];
    for (const decl of target.declarations ?? []) {
      const node = ts.isVariableDeclaration(decl) ? decl.parent.parent : decl;
      const text = printer
        .printNode(ts.EmitHint.Unspecified, node, decl.getSourceFile())
        .split('\n')
        .filter((line) => !PRIVATE_MEMBER.test(line))
        .join('\n')
        .replace(/^export /, '');
      parts.push(target.name === name ? text : `/* exported as ${name} */ ${text}`);
    }
    return parts.join('\n');
  };

  // The root re-exports the layers: list where each of its names comes from, not it again.
  const layerOf = new Map<ts.Symbol, string>();
  for (const [entry, file] of entries) if (entry !== 'sipkit') for (const e of exportsOf(file)) if (!layerOf.has(e.target)) layerOf.set(e.target, entry);

  const reports = new Map<string, string>();
  for (const [entry, file] of entries) {
    const body = exportsOf(file)
      .map(({ name, target }) => (entry === 'sipkit' && layerOf.has(target) ? `${name}: ${layerOf.get(target)}` : render(name, target)))
      .join(entry === 'sipkit' ? '\n' : '\n\n');
    const intro = entry === 'sipkit' ? 'Every export of the root entry, and the subpath that declares it.' : 'Every export, as its published declaration (private members and comments left out).';
    const fence = entry === 'sipkit' ? 'text' : 'ts';
    reports.set(reportFile(entry), `# ${entry}\n\nGenerated by \`npm run api:report\`; do not edit. ${intro}\n\n\`\`\`${fence}\n${body}\n\`\`\`\n`);
  }
  return reports;
}

/** Entries whose committed report differs from the sources (or is missing / left over). */
export function staleReports(root: string, reports = apiReports(root)): string[] {
  const dir = path.join(root, 'api');
  const committed = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.api.md')) : [];
  const stale = [...reports].filter(([file, text]) => !fs.existsSync(path.join(dir, file)) || fs.readFileSync(path.join(dir, file), 'utf8') !== text).map(([file]) => file);
  return [...stale, ...committed.filter((f) => !reports.has(f))].sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const reports = apiReports(root);
  const dir = path.join(root, 'api');
  if (process.argv.includes('--write')) {
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.api.md') && !reports.has(f)) fs.rmSync(path.join(dir, f));
    for (const [file, text] of reports) fs.writeFileSync(path.join(dir, file), text);
    console.log(`api: wrote ${reports.size} reports to api/`);
  } else {
    const stale = staleReports(root, reports);
    if (stale.length > 0) {
      console.error(`api: out of date: ${stale.join(', ')} (run npm run api:report and review the diff)`);
      process.exit(1);
    }
    console.log('api: reports up to date');
  }
}
