import { defineConfig } from 'tsup';

// One entry per public layer so `sipkit/<layer>` subpaths resolve to their own files.
// Build through `npm run build` (scripts/build.mjs): it builds into a fresh directory and
// swaps it in, so a running `npm start` never sees dist/ wiped.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'parser/index': 'src/parser/index.ts',
    'digest/index': 'src/digest/index.ts',
    'transport/index': 'src/transport/index.ts',
    'transaction/index': 'src/transaction/index.ts',
    'dialog/index': 'src/dialog/index.ts',
    'b2bua/index': 'src/b2bua/index.ts',
    'resolver/index': 'src/resolver/index.ts',
    'testing/index': 'src/testing/index.ts',
  },
  format: ['esm', 'cjs'],
  // Members tagged `/** @internal */` are used across sipkit's layers but are not API.
  dts: { compilerOptions: { stripInternal: true } },
  // No source maps: the output is unminified ES2022 with the sources' names and structure,
  // so stack traces read as they are; maps would point at src/*.ts, which the package does
  // not ship, or embed it (they were 62 % of the package).
  sourcemap: false,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
});
