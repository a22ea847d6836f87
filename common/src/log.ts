import { pino, type Logger, type LoggerOptions } from 'pino';
import { redactUrlSecrets } from './shown-url.js';

/** Paths pino redacts wherever they appear in a log object: secrets never reach logs. */
export const REDACT_PATHS = [
  'session',
  '*.session',
  'sessionId',
  '*.sessionId',
  'session_id',
  '*.session_id',
  'key',
  '*.key',
  'password',
  '*.password',
  'ticket',
  '*.ticket',
  'stdin',
  '*.stdin',
];

export type { Logger };

/**
 * JSON logs to stdout (or to `destination` when given), with the service name on every line.
 * Secret fields are redacted by name; a URL's user and password and an export URL's token, which
 * may sit inside any string (an error message, a driver's output), are redacted in the written line
 * itself (shown-url.ts).
 */
export function createLogger(service: string, level = 'info', destination?: number): Logger {
  const options: LoggerOptions = {
    name: service,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks: { streamWrite: redactUrlSecrets },
    base: { service, pid: process.pid },
  };
  return destination === undefined ? pino(options) : pino(options, pino.destination(destination));
}
