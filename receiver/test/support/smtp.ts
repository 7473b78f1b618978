/**
 * A small raw SMTP client for tests: exact commands, exact replies (RFC 5321 section 4.2),
 * STARTTLS in place. It checks nothing itself; tests assert on what it returns.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export interface Reply {
  code: number;
  /** Lines without the code and separator. */
  lines: string[];
  /** `code text` of the last line, e.g. `550 5.7.1 Relaying denied`. */
  text: string;
}

export class RawSmtp {
  socket: net.Socket;
  #buf = '';
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(s: net.Socket): void {
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    s.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    s.on('error', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static connect(
    port: number,
    options: { tls?: tls.ConnectionOptions; localAddress?: string } = {},
  ): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s = options.tls
        ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...options.tls })
        : net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
      s.once(options.tls ? 'secureConnect' : 'connect', () => resolve(new RawSmtp(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Next complete reply; null if the connection closed first. */
  async reply(): Promise<Reply | null> {
    for (;;) {
      const lines: string[] = [];
      let pos = 0;
      for (;;) {
        const eol = this.#buf.indexOf('\r\n', pos);
        if (eol < 0) break;
        const line = this.#buf.slice(pos, eol);
        pos = eol + 2;
        lines.push(line);
        if (line[3] !== '-') {
          this.#buf = this.#buf.slice(pos);
          return { code: Number(line.slice(0, 3)), lines: lines.map((l) => l.slice(4)), text: line };
        }
      }
      if (this.#closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  write(text: string | Uint8Array): void {
    this.socket.write(text);
  }

  /** Send one command line and return its reply. */
  async cmd(line: string): Promise<Reply | null> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  async startTls(ca: string): Promise<Reply | null> {
    const r = await this.cmd('STARTTLS');
    if (r?.code !== 220) return r;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.#buf = '';
    const secure = tls.connect({ socket: plain, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#attach(secure);
    return r;
  }

  close(): void {
    this.socket.destroy();
  }
}
