/**
 * Make sure the peers are there before anything starts (issue 7: the bench installs its peers).
 * - Debian: postfix (for smtp-source and smtp-sink; preseeded to "No configuration", so no system
 *   instance and nothing on port 25), `time` (smtp-source's CPU) and openssl (the Worker's test CA).
 *   Installed with apt-get when missing and we may (root, or sudo), unless --no-install.
 * - npm: smtp-server, nodemailer, worker-mailer, s3rver and wrangler are root devDependencies;
 *   when one is missing the fix is `npm ci` (not run from here: it replaces node_modules).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_DIR } from './proc.ts';

const NPM_PEERS = ['smtp-server', 'nodemailer', 'worker-mailer', 's3rver', 'wrangler', '@aws-sdk/client-s3'];

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function preflight(options: { install: boolean; log: (t: string) => void }): void {
  const require = createRequire(join(REPO_DIR, 'package.json'));
  const missingNpm = NPM_PEERS.filter((name) => {
    try {
      require.resolve(`${name}/package.json`);
      return false;
    } catch {
      return true;
    }
  });
  if (missingNpm.length > 0) {
    throw new Error(
      `npm peers missing: ${missingNpm.join(', ')}. Run \`npm ci\` at the repository root first.`,
    );
  }
  const debs: string[] = [];
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) debs.push('postfix');
  if (!existsSync('/usr/bin/time')) debs.push('time');
  if (!has('openssl')) debs.push('openssl');
  if (debs.length === 0) return;
  const root = process.getuid?.() === 0;
  const sudo = root ? [] : has('sudo') ? ['sudo'] : null;
  if (!options.install || sudo === null || !has('apt-get')) {
    throw new Error(
      `missing Debian packages: ${debs.join(' ')}. Install them (apt-get install ${debs.join(' ')}), ` +
        'or run as root on Debian/Ubuntu without --no-install.',
    );
  }
  options.log(
    `installing ${debs.join(' ')} with apt-get (postfix preseeded to "No configuration": no daemon)`,
  );
  const run = (args: string[], input?: string): void => {
    const [cmd, ...rest] = [...sudo, ...args];
    execFileSync(cmd!, rest, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'inherit', 'inherit'],
      input,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  run(['apt-get', 'update', '-qq']);
  if (debs.includes('postfix')) {
    run(['debconf-set-selections'], 'postfix postfix/main_mailer_type select No configuration\n');
  }
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...debs]);
}
