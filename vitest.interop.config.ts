import { defineConfig } from 'vitest/config';

// `npm run test:interop`: tests against real third-party SMTP peers installed from Debian
// (.ci/run installs them). Each file checks for its peer and fails loudly when it is missing.
export default defineConfig({
  test: {
    name: 'interop',
    include: ['**/*.interop.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
