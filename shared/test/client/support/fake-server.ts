/**
 * Test servers for the client, on 127.0.0.1 with ephemeral ports.
 *
 * - `startRawServer(handler)`: the handler drives each connection by hand (send exact bytes,
 *   read lines, upgrade to TLS), for misbehaving-server tests.
 * - `startFakeSmtp(options)`: a small scripted SMTP server (EHLO/HELO, STARTTLS, AUTH PLAIN and
 *   LOGIN, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT) that records everything the client sent,
 *   byte for byte, for exact wire checks. Replies can be overridden per command.
 *
 * Neither is an SMTP server to rely on: they check the client, nothing else.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

export interface RawConn {
  /** Everything received from the client so far (latin1, so bytes map 1:1 to chars). */
  readonly received: () => string;
  send(text: string | Uint8Array): Promise<void>;
  /** Next CRLF line (without CRLF); null at end of stream. */
  readLine(): Promise<string | null>;
  /** Exactly n octets (null at end of stream). */
  readBytes(n: number): Promise<Buffer | null>;
  /** Read until `marker` (inclusive); returns the text before it. */
  readUntil(marker: string): Promise<string | null>;
  /** DATA content through the terminating <CRLF>.<CRLF>, terminator included. */
  readData(): Promise<string | null>;
  /** Server-side TLS on this socket (after a STARTTLS reply); drops nothing by itself. */
  upgrade(options: { key: string; cert: string }): Promise<void>;
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  end(): void;
  destroy(): void;
}

export interface RawServer {
  port: number;
  connections: RawConn[];
  close(): Promise<void>;
}

class Conn implements RawConn {
  socket: net.Socket;
  #buf = Buffer.alloc(0);
  #log: Buffer[] = [];
  #waiters: (() => void)[] = [];
  #ended = false;
  closed: Promise<void>;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#log.push(d);
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  received = (): string => Buffer.concat(this.#log).toString('latin1');

  send(text: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.write(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, () => resolve());
    });
  }

  async readLine(): Promise<string | null> {
    for (;;) {
      const i = this.#buf.indexOf('\r\n');
      if (i >= 0) {
        const line = this.#buf.subarray(0, i).toString('utf8');
        this.#buf = this.#buf.subarray(i + 2);
        return line;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  async readBytes(n: number): Promise<Buffer | null> {
    for (;;) {
      if (this.#buf.length >= n) {
        const out = this.#buf.subarray(0, n);
        this.#buf = this.#buf.subarray(n);
        return out;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  async readUntil(marker: string): Promise<string | null> {
    for (;;) {
      const i = this.#buf.indexOf(marker, 0, 'latin1');
      if (i >= 0) {
        const text = this.#buf.subarray(0, i).toString('latin1');
        this.#buf = this.#buf.subarray(i + marker.length);
        return text;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  /** DATA content up to and including <CRLF>.<CRLF> (or a leading .<CRLF> for an empty message), as received. */
  async readData(): Promise<string | null> {
    for (;;) {
      if (this.#buf.length >= 3 && this.#buf.subarray(0, 3).toString('latin1') === '.\r\n') {
        this.#buf = this.#buf.subarray(3);
        return '.\r\n';
      }
      const i = this.#buf.indexOf('\r\n.\r\n', 0, 'latin1');
      if (i >= 0) {
        const text = this.#buf.subarray(0, i + 5).toString('latin1');
        this.#buf = this.#buf.subarray(i + 5);
        return text;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
  }

  upgrade(options: { key: string; cert: string }): Promise<void> {
    // What the plain socket buffered is dropped, as RFC 3207 section 4.2 asks of servers too.
    this.#buf = Buffer.alloc(0);
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
    const secure = new tls.TLSSocket(this.socket, {
      isServer: true,
      secureContext: tls.createSecureContext({ key: options.key, cert: options.cert }),
    });
    this.socket = secure;
    this.#attach(secure);
    return new Promise((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
    });
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export async function startRawServer(
  handler: (conn: RawConn) => Promise<void>,
  options: { implicitTls?: { key: string; cert: string } } = {},
): Promise<RawServer> {
  const connections: RawConn[] = [];
  const sockets = new Set<net.Socket>();
  const onSocket = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const conn = new Conn(socket);
    connections.push(conn);
    handler(conn).catch(() => conn.destroy());
  };
  const server = options.implicitTls
    ? tls.createServer({ key: options.implicitTls.key, cert: options.implicitTls.cert }, onSocket)
    : net.createServer(onSocket);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface FakeMessage {
  mail: string;
  rcpts: string[];
  /** The message as received (DATA: still dot-stuffed, with the terminator; BDAT: chunks joined). */
  raw: Buffer;
  /** For BDAT: each chunk's `BDAT` command line. */
  bdat: string[];
}

export interface FakeSession {
  commands: string[];
  messages: FakeMessage[];
  received: () => string;
  tls: boolean;
  authUser: string | null;
}

export interface FakeSmtpOptions {
  /** EHLO keywords after the first line, e.g. ['PIPELINING', 'SIZE 1000', '8BITMIME']. */
  extensions?: string[];
  /** Keywords offered only after STARTTLS (default: same as `extensions` minus STARTTLS). */
  extensionsAfterTls?: string[];
  greeting?: string;
  /** Server certificate for STARTTLS and implicit TLS. */
  tls?: { key: string; cert: string };
  implicitTls?: boolean;
  /** Accepted AUTH PLAIN/LOGIN credentials. */
  users?: Record<string, string>;
  /** Reply line(s) for a recipient; default `250 2.1.5 OK`. */
  rcpt?: (address: string) => string;
  /** Reply to a command, or undefined for the default handling. */
  override?: (line: string, session: FakeSession) => string | undefined;
  /** Final reply to DATA / BDAT LAST; default `250 2.0.0 OK size=N sha256=HEX` of the raw message. */
  accept?: (message: FakeMessage) => string;
}

export interface FakeSmtp {
  port: number;
  sessions: FakeSession[];
  close(): Promise<void>;
}

/** `250 2.0.0 OK size=N sha256=HEX` over the raw message, so a remote test can check the bytes. */
export function digestReply(raw: Buffer): string {
  return `250 2.0.0 OK size=${raw.length} sha256=${createHash('sha256').update(raw).digest('hex')}`;
}

export async function startFakeSmtp(options: FakeSmtpOptions = {}): Promise<FakeSmtp> {
  const sessions: FakeSession[] = [];
  const extensions = options.extensions ?? ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'];
  const afterTls = options.extensionsAfterTls ?? extensions.filter((e) => e !== 'STARTTLS');
  const raw = await startRawServer(
    async (conn) => {
      const session: FakeSession = {
        commands: [],
        messages: [],
        received: conn.received,
        tls: options.implicitTls === true,
        authUser: null,
      };
      sessions.push(session);
      await conn.send(`${options.greeting ?? '220 fake.test ESMTP ready'}\r\n`);
      let message: FakeMessage | null = null;
      let bdatParts: Buffer[] = [];
      for (;;) {
        const line = await conn.readLine();
        if (line === null) return;
        session.commands.push(line);
        const verb = line.split(' ')[0]!.toUpperCase();
        const custom = verb === 'BDAT' ? undefined : options.override?.(line, session);
        if (custom !== undefined) {
          await conn.send(`${custom}\r\n`);
          if (verb === 'DATA' && custom.startsWith('354')) {
            const body = await conn.readData();
            if (body === null) return;
            if (message && message.rcpts.length > 0) {
              message.raw = Buffer.from(body, 'latin1');
              session.messages.push(message);
              await conn.send(`${options.accept?.(message) ?? digestReply(message.raw)}\r\n`);
            } else {
              await conn.send('554 5.5.1 no valid recipients\r\n');
            }
            message = null;
          }
          if (verb === 'QUIT') {
            conn.end();
            return;
          }
          continue;
        }
        switch (verb) {
          case 'EHLO': {
            const exts = session.tls ? afterTls : extensions;
            const all = ['fake.test greets you', ...exts];
            await conn.send(all.map((e, i) => `250${i === all.length - 1 ? ' ' : '-'}${e}\r\n`).join(''));
            break;
          }
          case 'HELO':
            await conn.send('250 fake.test\r\n');
            break;
          case 'STARTTLS':
            if (!options.tls) {
              await conn.send('502 5.5.1 no TLS here\r\n');
              break;
            }
            await conn.send('220 2.0.0 go ahead\r\n');
            await conn.upgrade(options.tls);
            session.tls = true;
            break;
          case 'AUTH': {
            const [, mech, ir] = line.split(' ');
            let user: string | null = null;
            let pass: string | null = null;
            if (mech?.toUpperCase() === 'PLAIN') {
              let resp = ir;
              if (resp === undefined) {
                await conn.send('334 \r\n');
                resp = (await conn.readLine()) ?? '';
                session.commands.push(resp);
              }
              const parts = Buffer.from(resp, 'base64').toString('utf8').split('\0');
              user = parts[1] ?? null;
              pass = parts[2] ?? null;
            } else if (mech?.toUpperCase() === 'LOGIN') {
              await conn.send(`334 ${Buffer.from('Username:').toString('base64')}\r\n`);
              const u = (await conn.readLine()) ?? '';
              session.commands.push(u);
              await conn.send(`334 ${Buffer.from('Password:').toString('base64')}\r\n`);
              const p = (await conn.readLine()) ?? '';
              session.commands.push(p);
              user = Buffer.from(u, 'base64').toString('utf8');
              pass = Buffer.from(p, 'base64').toString('utf8');
            } else {
              await conn.send('504 5.5.4 mechanism not supported\r\n');
              break;
            }
            if (user !== null && options.users?.[user] === pass) {
              session.authUser = user;
              await conn.send('235 2.7.0 Authentication successful\r\n');
            } else {
              await conn.send('535 5.7.8 Authentication credentials invalid\r\n');
            }
            break;
          }
          case 'MAIL':
            message = { mail: line, rcpts: [], raw: Buffer.alloc(0), bdat: [] };
            bdatParts = [];
            await conn.send('250 2.1.0 OK\r\n');
            break;
          case 'RCPT': {
            const addr = /<([^>]*)>/.exec(line)?.[1] ?? '';
            const reply = options.rcpt?.(addr) ?? '250 2.1.5 OK';
            if (reply.startsWith('2')) message?.rcpts.push(line);
            await conn.send(`${reply}\r\n`);
            break;
          }
          case 'DATA': {
            if (!message || message.rcpts.length === 0) {
              await conn.send('554 5.5.1 no valid recipients\r\n');
              break;
            }
            await conn.send('354 go ahead\r\n');
            const body = await conn.readData();
            if (body === null) return;
            message.raw = Buffer.from(body, 'latin1');
            session.messages.push(message);
            await conn.send(`${options.accept?.(message) ?? digestReply(message.raw)}\r\n`);
            message = null;
            break;
          }
          case 'BDAT': {
            const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
            if (!m) {
              await conn.send('501 5.5.4 bad BDAT\r\n');
              break;
            }
            const data = await conn.readBytes(Number(m[1]));
            if (data === null) return;
            const custom2 = options.override?.(line, session);
            if (custom2 !== undefined) {
              await conn.send(`${custom2}\r\n`);
              break;
            }
            if (!message) {
              await conn.send('503 5.5.1 no transaction\r\n');
              break;
            }
            message.bdat.push(line);
            bdatParts.push(Buffer.from(data));
            if (m[2]) {
              message.raw = Buffer.concat(bdatParts);
              session.messages.push(message);
              await conn.send(`${options.accept?.(message) ?? digestReply(message.raw)}\r\n`);
              message = null;
            } else {
              await conn.send(`250 2.0.0 ${data.length} octets received\r\n`);
            }
            break;
          }
          case 'RSET':
            message = null;
            await conn.send('250 2.0.0 OK\r\n');
            break;
          case 'NOOP':
            await conn.send('250 2.0.0 OK\r\n');
            break;
          case 'QUIT':
            await conn.send('221 2.0.0 bye\r\n');
            conn.end();
            return;
          default:
            await conn.send('500 5.5.2 unknown command\r\n');
        }
      }
    },
    options.implicitTls && options.tls ? { implicitTls: options.tls } : {},
  );
  return { port: raw.port, sessions, close: raw.close };
}
