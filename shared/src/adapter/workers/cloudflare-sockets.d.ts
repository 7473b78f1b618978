/**
 * Minimal ambient types for the Workers TCP socket API, for type-checking this adapter under
 * the Node types of `shared/tsconfig.json` (where `@cloudflare/workers-types` would clash).
 * Shapes follow https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/; in a
 * Worker project with `@cloudflare/workers-types` this file is not included and theirs is used.
 */
declare module 'cloudflare:sockets' {
  interface SocketAddress {
    hostname: string;
    port: number;
  }
  interface SocketOptions {
    secureTransport?: 'off' | 'on' | 'starttls';
    allowHalfOpen: boolean;
    highWaterMark?: number | bigint;
  }
  interface SocketInfo {
    remoteAddress?: string;
    localAddress?: string;
  }
  interface Socket {
    readonly readable: ReadableStream<Uint8Array>;
    readonly writable: WritableStream<Uint8Array>;
    readonly closed: Promise<void>;
    readonly opened: Promise<SocketInfo>;
    readonly upgraded: boolean;
    readonly secureTransport: 'on' | 'off' | 'starttls';
    close(): Promise<void>;
    startTls(options?: { expectedServerHostname?: string }): Socket;
  }
  export function connect(address: string | SocketAddress, options?: SocketOptions): Socket;
}
