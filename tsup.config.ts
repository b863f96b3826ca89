import { defineConfig } from 'tsup';

// One entry per public layer so `sipkit/<layer>` subpaths resolve to their own files.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'parser/index': 'src/parser/index.ts',
    'digest/index': 'src/digest/index.ts',
    'transport/index': 'src/transport/index.ts',
    'transaction/index': 'src/transaction/index.ts',
    'dialog/index': 'src/dialog/index.ts',
    'b2bua/index': 'src/b2bua/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
});
