/**
 * JSON-lines logging (pino) to stdout. One line per connection (at close) and one per transaction;
 * see docs/reference/receiver-env.md ("Logs") for the fields.
 */
import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'smtp-edge-receiver' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
