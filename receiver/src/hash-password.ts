/**
 * `npm run receiver -- hash-password [NAME]`: print a `{SCRYPT}` line for RECEIVER_USERS_FILE.
 *
 * The password is read from stdin: piped (`printf '%s' "$PW" | npm run receiver -- hash-password`,
 * one trailing newline is removed), or typed at a terminal prompt with echo off, twice. It is never
 * taken from the command line (where `ps` and shell history would show it).
 * Output: `NAME:{SCRYPT}$scrypt$ln=15,r=8,p=1$…$…` (or just the secret without NAME).
 */
import { hashPassword } from './users.ts';

async function readPiped(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
    size += b.length;
    if (size > 4096) throw new Error('the password is longer than 4096 bytes');
    chunks.push(b);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function prompt(question: string, stdin: NodeJS.ReadStream, out: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    out.write(question);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      out.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function hashPasswordCommand(
  args: readonly string[],
  io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream },
): Promise<number> {
  const name = args[0];
  if (args.length > 1 || (name !== undefined && !/^[^\s:\x00-\x1f\x7f]{1,256}$/.test(name))) {
    io.stderr.write('usage: npm run receiver -- hash-password [NAME]   (the password is read from stdin)\n');
    return 2;
  }
  let password: string;
  try {
    if (io.stdin.isTTY) {
      password = await prompt('Password: ', io.stdin, io.stderr);
      const again = await prompt('Again: ', io.stdin, io.stderr);
      if (again !== password) {
        io.stderr.write('hash-password: the two passwords differ\n');
        return 1;
      }
    } else {
      password = await readPiped(io.stdin);
    }
  } catch (e) {
    io.stderr.write(`hash-password: ${(e as Error).message}\n`);
    return 1;
  }
  if (password === '') {
    io.stderr.write('hash-password: empty password\n');
    return 1;
  }
  const secret = await hashPassword(password);
  io.stdout.write(`${name === undefined ? '' : `${name}:`}${secret}\n`);
  return 0;
}
