import { readFileSync } from 'node:fs';

/**
 * Log lines of a daemon that say something unforeseen happened: a bug, not a refusal (refusals may
 * be logged as errors, e.g. a post_backup that failed, which oned ignores): fatal, an unexpected
 * error, an unhandled rejection or an uncaught exception.
 */
export function unexpectedLines(log: string): string[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => /"level":60/.test(l) || /"msg":"unexpected error"|unhandled|uncaught/i.test(l));
}
