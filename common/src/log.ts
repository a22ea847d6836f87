import { pino, type Logger, type LoggerOptions } from 'pino';

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

/** JSON logs to stdout (or to `destination` when given), with the service name on every line. */
export function createLogger(service: string, level = 'info', destination?: number): Logger {
  const options: LoggerOptions = {
    name: service,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service, pid: process.pid },
  };
  return destination === undefined ? pino(options) : pino(options, pino.destination(destination));
}
