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
import { removeOnExit, testPki } from '../test/support/tls.ts';

export default defineConfig(async () => {
  // One PKI for every Workers project in this vitest process (workers/vitest.config.ts uses the
  // same variable): whichever config runs first creates it and points NODE_EXTRA_CA_CERTS at its CA.
  if (process.env.SMTP_EDGE_WORKERS_PKI_DIR === undefined) {
    const pki = testPki(mkdtempSync(join(tmpdir(), 'smtp-edge-workers-pki-')));
    removeOnExit(pki.dir);
    process.env.SMTP_EDGE_WORKERS_PKI_DIR = pki.dir;
    process.env.NODE_EXTRA_CA_CERTS = pki.caCertPath;
  }
  const { cloudflareTest } = await import('@cloudflare/vitest-plugin');
  return {
    plugins: [
      cloudflareTest({
        miniflare: {
          compatibilityDate: '2025-11-17',
          // As in the root wrangler.toml: report a rejection as unhandled only after the microtask
          // checkpoint (the default from 2026-03-03). Without it workerd reports a false "This socket
          // has been closed." unhandled rejection when a socket with a pending read is closed after
          // an SMTP time-out, although the read's rejection is handled (seen with a 100 ms
          // greeting/command timeout against a silent server: 10 errors in 10 tests, 0 with the flag).
          compatibilityFlags: ['nodejs_compat', 'unhandled_rejection_after_microtask_checkpoint'],
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
