import { defineConfig } from 'vitest/config';

// `npm test`: every test that needs only npm packages. Tests that need Debian peers
// (swaks, postfix, msmtp, exim, python) are named `*.interop.test.ts` and run by
// `npm run test:interop` (vitest.interop.config.ts).
export default defineConfig({
  test: {
    projects: [
      './workers/vitest.config.ts',
      './shared/vitest.workers.config.ts',
      {
        test: {
          name: 'shared',
          root: './shared',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.interop.test.ts', 'src/adapter/workers/**', '**/node_modules/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'receiver',
          root: './receiver',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.interop.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          root: './test',
          include: ['**/*.test.ts'],
          exclude: ['**/*.interop.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
