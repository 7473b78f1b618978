/**
 * Node side of the Workers tests: scripted SMTP servers on 127.0.0.1 (plain, STARTTLS and
 * implicit TLS with a certificate from the test CA, and both TLS flavours with an untrusted
 * certificate). Their ports reach the tests through `provide`/`inject`.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type FakeSmtp, startFakeSmtp } from '../client/support/fake-server.ts';

export interface WorkersTestPorts {
  plain: number;
  starttls: number;
  implicit: number;
  untrustedStarttls: number;
  untrustedImplicit: number;
  chunking: number;
  closed: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    smtpPorts: WorkersTestPorts;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = process.env.SMTP_EDGE_WORKERS_PKI_DIR;
  if (!dir)
    throw new Error('SMTP_EDGE_WORKERS_PKI_DIR is not set: run through shared/vitest.workers.config.ts');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const good = { key: read('server.key'), cert: read('server.crt') };
  const bad = { key: read('untrusted.key'), cert: read('untrusted.crt') };
  const users = { ann: 'secret pass' };
  const servers: FakeSmtp[] = [];
  const start = async (o: Parameters<typeof startFakeSmtp>[0]) => {
    const s = await startFakeSmtp(o);
    servers.push(s);
    return s.port;
  };
  const closedPort = await new Promise<number>((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const ports: WorkersTestPorts = {
    plain: await start({ extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'DSN'] }),
    starttls: await start({
      tls: good,
      extensions: ['STARTTLS', 'PIPELINING'],
      extensionsAfterTls: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
      users,
    }),
    implicit: await start({
      tls: good,
      implicitTls: true,
      extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
      users,
    }),
    untrustedStarttls: await start({ tls: bad, extensions: ['STARTTLS'] }),
    untrustedImplicit: await start({ tls: bad, implicitTls: true }),
    chunking: await start({ extensions: ['CHUNKING', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'] }),
    closed: closedPort,
  };
  project.provide('smtpPorts', ports);
  return async () => {
    await Promise.all(servers.map((s) => s.close()));
  };
}
