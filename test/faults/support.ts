/**
 * Fault injection for the "nothing lost" suite (issue 8): a seeded TCP proxy that breaks
 * connections the way real networks and overloaded object stores do, a delivering client that
 * retries what was not acknowledged, and a checker for a receiver's stored objects.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { sendMail } from '../../shared/src/adapter/node/client.ts';
import { SmtpReplyError } from '../../shared/src/core/errors.ts';

/** A small seeded PRNG (mulberry32): the same seed gives the same fault sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Fault =
  /** Forward both ways. */
  | 'pass'
  /** Forward part of the request, then reset both sides. */
  | 'reset-request'
  /** Forward the whole request; cut the response part way (the upstream may have acted on it). */
  | 'reset-response'
  /** Accept and forward nothing until the client gives up (or `stallMs`, then reset). */
  | 'stall'
  /** Forward both ways in small pieces with pauses (slow bodies). */
  | 'slow'
  /** Answer with an HTTP 500/503 without forwarding anything, then close. */
  | 'http-error'
  /**
   * Hold the request and answer nothing; once the client gives up (closes), send what it had
   * written to the upstream `lateMs` later: the store acts on a request its sender stopped
   * waiting for (a lost response, a middlebox that delivers late). Only when a mix names it.
   */
  | 'late';

export interface FaultProxyStats {
  connections: number;
  faults: Record<Fault, number>;
}

export interface ChaosProxy {
  port: number;
  endpoint: string;
  stats: FaultProxyStats;
  /** Change the mix; `{ pass: 1 }` heals the network. */
  setMix(mix: Partial<Record<Fault, number>>): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `targetPort` (an HTTP server) that picks one fault per request/response
 * exchange from `mix` (weights) with a seeded PRNG. Faults act on raw bytes, so they hit
 * whatever the client is doing at the time: a PutObject body, a multipart part, a response, a
 * DELETE of the clean-up.
 */
export async function startChaosProxy(
  targetPort: number,
  seed: number,
  initial: Partial<Record<Fault, number>>,
  options: { stallMs?: number; lateMs?: number } = {},
): Promise<ChaosProxy> {
  const random = prng(seed);
  let mix = initial;
  const stats: FaultProxyStats = {
    connections: 0,
    faults: {
      pass: 0,
      'reset-request': 0,
      'reset-response': 0,
      stall: 0,
      slow: 0,
      'http-error': 0,
      late: 0,
    },
  };
  const sockets = new Set<Socket>();
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    return s;
  };
  const pick = (): Fault => {
    const entries = Object.entries(mix) as [Fault, number][];
    const total = entries.reduce((n, [, w]) => n + w, 0);
    let x = random() * total;
    for (const [f, w] of entries) {
      x -= w;
      if (x < 0) return f;
    }
    return 'pass';
  };
  const server: Server = createServer((client) => {
    // Faults are chosen per HTTP exchange, not per connection (the SDK keeps connections
    // alive): a new exchange starts when the client writes after the upstream has answered
    // (HTTP/1.1 without pipelining alternates request and response).
    track(client);
    stats.connections++;
    const upstream = track(connect(targetPort, '127.0.0.1'));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let fault: Fault = 'pass';
    let answered = true;
    let budget = 0;
    let stallTimer: NodeJS.Timeout | undefined;
    client.on('close', () => clearTimeout(stallTimer));
    const held: Buffer[] = [];
    client.on('close', () => {
      if (fault !== 'late' || held.length === 0) return;
      const request = Buffer.concat(held);
      setTimeout(() => {
        const late = track(connect(targetPort, '127.0.0.1'));
        late.write(request);
        late.once('data', () => late.destroy());
        setTimeout(() => late.destroy(), 10_000).unref();
      }, options.lateMs ?? 300);
    });
    // Ordered, paced writes for slow exchanges.
    let upChain = Promise.resolve();
    let downChain = Promise.resolve();
    const drip = (to: Socket, d: Buffer, chain: Promise<void>): Promise<void> =>
      chain.then(async () => {
        for (let at = 0; at < d.length && !to.destroyed; at += 512) {
          to.write(d.subarray(at, at + 512));
          await new Promise((r) => setTimeout(r, 5));
        }
      });
    const cut = () => {
      client.resetAndDestroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      if (answered) {
        fault = pick();
        stats.faults[fault]++;
        answered = false;
        budget = fault === 'reset-request' ? 1 + Math.floor(random() * 2000) : Math.floor(random() * 300);
        if (fault === 'stall' || fault === 'late') stallTimer = setTimeout(cut, options.stallMs ?? 5000);
        if (fault === 'http-error') {
          const status = random() < 0.5 ? '500 Internal Server Error' : '503 Slow Down';
          const code = status.startsWith('500') ? 'InternalError' : 'SlowDown';
          const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;
          client.end(
            `HTTP/1.1 ${status}\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
          upstream.destroy();
        }
      }
      switch (fault) {
        case 'pass':
        case 'reset-response':
          upstream.write(d);
          return;
        case 'slow':
          upChain = drip(upstream, d, upChain);
          return;
        case 'late':
          held.push(d);
          return;
        case 'reset-request':
          upstream.write(d.subarray(0, Math.max(0, budget)));
          budget -= d.length;
          if (budget <= 0) cut();
          return;
        default:
          // stall, http-error: the request goes nowhere.
          return;
      }
    });
    upstream.on('data', (d: Buffer) => {
      answered = true;
      switch (fault) {
        case 'slow':
          downChain = drip(client, d, downChain);
          return;
        case 'reset-response':
          client.write(d.subarray(0, Math.max(0, budget)));
          budget -= d.length;
          if (budget <= 0) cut();
          return;
        default:
          client.write(d);
      }
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    setMix(m) {
      mix = m;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Delivery {
  marker: string;
  bytes: string;
  /** Every outcome in order: 250, a 4xx code, or 'conn' for a connection error / timeout. */
  outcomes: Array<number | 'conn'>;
  acked: boolean;
  /** The last error, for diagnostics. */
  lastError?: string;
}

/** The message for `marker`: unique, recognizable, CRLF throughout. */
export function messageFor(marker: string, filler = 2000): string {
  const line = `${marker} ${'0123456789'.repeat(7)}\r\n`;
  return (
    `From: <load@client.example>\r\nTo: <rcpt@example.com>\r\nSubject: ${marker}\r\n` +
    `Message-ID: <${marker}@client.example>\r\n\r\n${line.repeat(Math.ceil(filler / line.length))}`
  );
}

/**
 * Deliver `marker` until a 250, retrying every 4xx and connection failure (as an MTA queue
 * would), at most `attempts` times. A 5xx fails the delivery (it must never happen here).
 */
export async function deliver(
  port: number,
  marker: string,
  options: { attempts?: number; pauseMs?: number; bytes?: string; port?: () => number } = {},
): Promise<Delivery> {
  const bytes = options.bytes ?? messageFor(marker);
  const d: Delivery = { marker, bytes, outcomes: [], acked: false };
  for (let i = 0; i < (options.attempts ?? 30); i++) {
    try {
      const r = await sendMail(
        {
          host: '127.0.0.1',
          port: options.port?.() ?? port,
          security: 'none',
          helo: 'load.client.example',
          timeouts: { connectMs: 5000, greetingMs: 10_000, commandMs: 10_000, dataMs: 20_000, quitMs: 1000 },
        },
        { from: 'load@client.example', to: ['rcpt@example.com'] },
        bytes,
      );
      d.outcomes.push(r.response.code);
      if (r.response.code === 250) {
        d.acked = true;
        return d;
      }
    } catch (e) {
      if (e instanceof SmtpReplyError) {
        d.outcomes.push(e.code);
        if (e.code >= 500) return d;
      } else {
        d.outcomes.push('conn');
      }
      d.lastError = String(e);
    }
    await new Promise((r) => setTimeout(r, options.pauseMs ?? 50));
  }
  return d;
}

export interface StoredMessage {
  id: string;
  eml: Uint8Array;
  json: Record<string, unknown>;
}

/** Stored bytes are our Received: header followed by exactly what the client sent. */
export function bodyAfterReceived(eml: Uint8Array): string {
  const text = Buffer.from(eml).toString('latin1');
  if (!text.startsWith('Received: ')) throw new Error('stored message does not start with Received:');
  let end = text.indexOf('\r\n');
  while (text[end + 2] === '\t' || text[end + 2] === ' ') end = text.indexOf('\r\n', end + 2);
  return text.slice(end + 2);
}

export interface StoreAudit {
  /** Committed messages (a .json and its .eml). */
  committed: StoredMessage[];
  /** `.eml` without `.json` (not committed, but visible under a final name). */
  orphanEml: string[];
  /** `.json` without `.eml` (a commit marker pointing at nothing). */
  orphanJson: string[];
  /** Anything else under a final name (temporary files are ignored when dot-named). */
  other: string[];
}

/** Group object names `<base>.eml` / `<base>.json` and load the committed pairs. */
export async function audit(
  names: string[],
  load: (name: string) => Promise<Uint8Array>,
  ignore: (name: string) => boolean = () => false,
): Promise<StoreAudit> {
  const emls = new Set(names.filter((n) => n.endsWith('.eml')).map((n) => n.slice(0, -4)));
  const jsons = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  const out: StoreAudit = { committed: [], orphanEml: [], orphanJson: [], other: [] };
  for (const n of names) {
    if (ignore(n)) continue;
    if (!n.endsWith('.eml') && !n.endsWith('.json')) out.other.push(n);
  }
  for (const base of emls) if (!jsons.has(base)) out.orphanEml.push(`${base}.eml`);
  for (const base of jsons) {
    if (!emls.has(base)) {
      out.orphanJson.push(`${base}.json`);
      continue;
    }
    const eml = await load(`${base}.eml`);
    const json = JSON.parse(Buffer.from(await load(`${base}.json`)).toString('utf8')) as Record<
      string,
      unknown
    >;
    out.committed.push({ id: String(json['id']), eml, json });
  }
  return out;
}

/** Marker -> committed copies. */
export function copiesByMarker(
  committed: StoredMessage[],
  markerPattern: RegExp,
): Map<string, StoredMessage[]> {
  const map = new Map<string, StoredMessage[]>();
  for (const m of committed) {
    const found = markerPattern.exec(bodyAfterReceived(m.eml));
    const key = found?.[0] ?? '(none)';
    map.set(key, [...(map.get(key) ?? []), m]);
  }
  return map;
}
