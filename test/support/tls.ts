/**
 * A throw-away test PKI made with the `openssl` command: one CA, a server certificate for
 * `localhost` / 127.0.0.1 signed by it, and a second self-signed "untrusted" certificate.
 * Files are cached per process under a temp directory, removed when the process exits (the
 * paths may be handed to child processes, so not earlier); tests never touch a real CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCertPath: string;
  caCert: string;
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** Self-signed for `localhost`, signed by nobody we trust. */
  untrustedCert: string;
  untrustedKey: string;
  /** Valid chain, but for the name `wrong.example`, not localhost. */
  wrongNameCert: string;
  wrongNameKey: string;
}

let cached: TestPki | undefined;

/** Directories to remove when this process ends. */
const removeAtExit = new Set<string>();

function removeNow(): void {
  for (const dir of removeAtExit) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort: a leftover temp directory is not worth failing the run for.
    }
  }
  removeAtExit.clear();
}

/**
 * Vitest stops its fork workers with SIGTERM, which runs no 'exit' handlers: remove the
 * directories, then let the signal do what it would have done. When nobody else listens for it
 * that is the default (terminate), so it is raised again once our listener is gone; when someone
 * else listens (the vitest main process does), they decide.
 */
function onSignal(signal: NodeJS.Signals): void {
  removeNow();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/**
 * Remove `dir` and everything in it when this process ends (normal exit, SIGTERM or SIGINT),
 * not earlier: its paths may have been handed to child processes (peers' configurations).
 * Only for directories this process created. SIGKILL leaves the directory behind.
 */
export function removeOnExit(dir: string): void {
  if (removeAtExit.size === 0) {
    process.once('exit', removeNow);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  removeAtExit.add(dir);
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function leaf(dir: string, name: string, cn: string, san: string): void {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '30',
    '-sha256',
    '-extfile',
    `${name}.ext`,
  ]);
}

/**
 * Create (once per process) and return the test PKI. Without `dir` the PKI goes to a new temp
 * directory that is removed at process exit; with `dir` the caller owns that directory (see
 * `removeOnExit`).
 */
export function testPki(dir?: string): TestPki {
  if (cached && dir === undefined) return cached;
  const d = dir ?? mkdtempSync(join(tmpdir(), 'smtp-edge-pki-'));
  if (dir === undefined) removeOnExit(d);
  openssl(d, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '30',
    '-subj',
    '/CN=smtp-edge test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  leaf(d, 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  leaf(d, 'wrongname', 'wrong.example', 'DNS:wrong.example');
  openssl(d, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'untrusted.key',
    '-out',
    'untrusted.crt',
    '-days',
    '30',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  const read = (f: string) => readFileSync(join(d, f), 'utf8');
  const pki: TestPki = {
    dir: d,
    caCertPath: join(d, 'ca.crt'),
    caCert: read('ca.crt'),
    certPath: join(d, 'server.crt'),
    keyPath: join(d, 'server.key'),
    cert: read('server.crt'),
    key: read('server.key'),
    untrustedCert: read('untrusted.crt'),
    untrustedKey: read('untrusted.key'),
    wrongNameCert: read('wrongname.crt'),
    wrongNameKey: read('wrongname.key'),
  };
  if (dir === undefined) cached = pki;
  return pki;
}
