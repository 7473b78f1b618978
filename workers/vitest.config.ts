/**
 * Worker tests, run inside workerd by @cloudflare/vitest-plugin against the root wrangler.toml.
 *
 * The test CA must be trusted by workerd: Miniflare reads NODE_EXTRA_CA_CERTS once, when it is
 * first loaded, so the PKI is created and the variable set BEFORE the plugin is imported.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { removeOnExit, testPki } from '../test/support/tls.ts';
import { RELAY_PASSWORD, RELAY_USER } from './test/relays.ts';

export default defineConfig(async () => {
  if (process.env.SMTP_EDGE_WORKERS_PKI_DIR === undefined) {
    const pki = testPki(mkdtempSync(join(tmpdir(), 'smtp-edge-workers-pki-')));
    removeOnExit(pki.dir);
    process.env.SMTP_EDGE_WORKERS_PKI_DIR = pki.dir;
    process.env.NODE_EXTRA_CA_CERTS = pki.caCertPath;
  }
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
  process.env.WRANGLER_SEND_METRICS = 'false';
  const { cloudflareTest } = await import('@cloudflare/vitest-plugin');
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: '../wrangler.toml' },
        miniflare: {
          cf: false,
          // The Worker under test relays through the STARTTLS test relay by default.
          bindings: {
            API_KEYS: 'test-key-1,\ntest-key-2',
            SMTP_HOST: '127.0.0.1',
            SMTP_PORT: String(inject('relayPort')),
            SMTP_SECURITY: 'starttls',
            SMTP_USERNAME: RELAY_USER,
            SMTP_PASSWORD: RELAY_PASSWORD,
            SMTP_HELO: 'worker.test',
          },
          // A second Worker that calls the Mailer entrypoint through a service binding.
          workers: [
            {
              name: 'caller',
              modules: true,
              scriptPath: './test/fixtures/caller.js',
              compatibilityDate: '2025-11-17',
              // The plugin renames the Worker under test to its runner, 'vitest-plugin-runner-<project>'.
              serviceBindings: { MAILER: { name: 'vitest-plugin-runner-workers', entrypoint: 'Mailer' } },
            },
          ],
          serviceBindings: { CALLER: 'caller' },
        },
      })),
    ],
    test: {
      name: 'workers',
      include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
      globalSetup: ['./test/global-setup.ts'],
      testTimeout: 30_000,
      // The Worker's one-line JSON log per send (send.ts logOutcome) is noise in test output.
      onConsoleLog: (log: string) => !log.startsWith('{"event":"send"'),
    },
  };
});
