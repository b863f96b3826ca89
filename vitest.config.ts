import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineConfig({
  resolve: {
    // The examples import sipkit by its public names; tests run them against the sources.
    alias: [
      { find: /^sipkit\/(.*)$/, replacement: `${src}$1/index.ts` },
      { find: /^sipkit$/, replacement: `${src}index.ts` },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
