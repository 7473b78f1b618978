/**
 * Workers-runtime tests of the client's Workers adapter (`src/adapter/workers`), run inside
 * workerd by @cloudflare/vitest-plugin against Node test servers started in globalSetup.
 *
 * The test CA must be trusted by workerd: NODE_EXTRA_CA_CERTS is read when miniflare first
 * loads, so it is set here before the plugin is imported (see /work/shared/notes/toolchain.md).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { testPki } from '../test/support/tls.ts';

export default defineConfig(async () => {
  // One PKI for every Workers project in this vitest process (workers/vitest.config.ts uses the
  // same variable): whichever config runs first creates it and points NODE_EXTRA_CA_CERTS at its CA.
  if (process.env.SMTP_EDGE_WORKERS_PKI_DIR === undefined) {
    const pki = testPki(mkdtempSync(join(tmpdir(), 'smtp-edge-workers-pki-')));
    process.env.SMTP_EDGE_WORKERS_PKI_DIR = pki.dir;
    process.env.NODE_EXTRA_CA_CERTS = pki.caCertPath;
  }
  const { cloudflareTest } = await import('@cloudflare/vitest-plugin');
  return {
    plugins: [
      cloudflareTest({
        miniflare: {
          compatibilityDate: '2025-11-17',
          compatibilityFlags: ['nodejs_compat'],
          cf: false,
        } as never,
      }),
    ],
    test: {
      name: 'shared-workers',
      include: ['src/adapter/workers/**/*.test.ts'],
      globalSetup: ['./test/workers/global-setup.ts'],
      testTimeout: 30_000,
    },
  };
});
