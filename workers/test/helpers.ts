/** Helpers for the Worker tests (run inside workerd). */

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env as workerEnv } from 'cloudflare:workers';
import { expect, inject } from 'vitest';
import { createApp } from '../src/app.ts';
import type { Env } from '../src/config.ts';
import type { SendFailure, SendRequest, SendResponse, SendSuccess } from '../src/types.ts';

export const KEY = 'test-key-1';
export const baseEnv = workerEnv as unknown as Env;

const app = createApp();

export interface PostOptions {
  key?: string | null;
  headers?: Record<string, string>;
  env?: Partial<Env>;
  /** Raw body instead of JSON. */
  raw?: BodyInit;
  /**
   * The request's execution context. By default one is made and its `waitUntil` work (the SMTP
   * QUIT) is awaited before `post` returns, so every test sees the relay session finished; pass
   * your own to get the response first and wait yourself (`waitOnExecutionContext`).
   */
  ctx?: ExecutionContext;
}

/** POST /send through the Hono app with the test bindings, optionally overridden. */
export async function post(body: unknown, options: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...options.headers };
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  const request = new Request('http://mailer.test/send', {
    method: 'POST',
    headers,
    body: options.raw ?? JSON.stringify(body),
  });
  const ctx = options.ctx ?? createExecutionContext();
  const res = await app.fetch(request, { ...baseEnv, ...options.env }, ctx);
  if (options.ctx === undefined) await waitOnExecutionContext(ctx);
  return res;
}

export async function json(res: Response): Promise<SendResponse> {
  expect(res.headers.get('Content-Type')).toBe('application/json; charset=utf-8');
  const body = (await res.json()) as SendResponse;
  expect(body.requestId).toBe(res.headers.get('X-Request-Id'));
  return body;
}

export async function failureOf(res: Response, status: number): Promise<SendFailure> {
  const body = await json(res);
  if (body.ok) throw new Error(`expected a failure, got ${JSON.stringify(body)}`);
  expect(res.status).toBe(status);
  expect(body.error.status).toBe(status);
  return body;
}

export async function successOf(res: Response): Promise<SendSuccess> {
  const body = await json(res);
  if (!body.ok) throw new Error(`expected success, got ${res.status} ${JSON.stringify(body)}`);
  expect(res.status).toBe(200);
  return body;
}

/** A unique recipient so a test finds its own message at the relay. */
export function unique(local: string): string {
  return `${local}-${crypto.randomUUID().slice(0, 8)}@example.org`;
}

export function message(overrides: Partial<SendRequest> = {}): SendRequest {
  return {
    from: 'app@example.org',
    to: unique('zoe'),
    subject: 'Hello',
    text: 'Hello from the edge',
    ...overrides,
  };
}

export interface ReceivedMessage {
  relay: string;
  mailFrom: string;
  rcptTo: string[];
  raw: Uint8Array;
  authUser: string | null;
  secure: boolean;
  dsn: unknown;
  rcptDsn: unknown[];
}

/** What the Node-side test relays received for `recipient`. */
export async function receivedFor(recipient: string): Promise<ReceivedMessage[]> {
  const res = await fetch(
    `http://127.0.0.1:${inject('inspectPort')}/received?to=${encodeURIComponent(recipient)}`,
  );
  const list = (await res.json()) as Array<Omit<ReceivedMessage, 'raw'> & { raw: string }>;
  return list.map((m) => ({ ...m, raw: Uint8Array.from(atob(m.raw), (c) => c.charCodeAt(0)) }));
}

/** How many SMTP sessions reached MAIL FROM at the test relays after `EHLO <helo>`. */
export async function sessionsFor(helo: string): Promise<number> {
  const res = await fetch(
    `http://127.0.0.1:${inject('inspectPort')}/sessions?helo=${encodeURIComponent(helo)}`,
  );
  return (await res.json()) as number;
}
