/**
 * vitest globalSetup (runs in Node, outside workerd): start the test relays and hand their
 * ports to the Worker tests with `provide` (read there with `inject`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type RelayPorts, startRelays } from './relays.ts';

declare module 'vitest' {
  export interface ProvidedContext extends RelayPorts {}
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = process.env.SMTP_EDGE_WORKERS_PKI_DIR;
  if (dir === undefined)
    throw new Error('SMTP_EDGE_WORKERS_PKI_DIR is not set: workers/vitest.config.ts sets it');
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const { ports, close } = await startRelays({
    caCert: read('ca.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    untrustedCert: read('untrusted.crt'),
    untrustedKey: read('untrusted.key'),
    wrongNameCert: read('wrongname.crt'),
    wrongNameKey: read('wrongname.key'),
  });
  for (const [key, value] of Object.entries(ports) as [keyof RelayPorts, number][])
    project.provide(key, value);
  return close;
}
