/**
 * A process's JSON log (pino) captured in a test: every line parsed, kept, and announced, so a
 * test waits for the line it expects (the 'line' event) instead of polling.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';

export type LogLine = Record<string, unknown>;

/**
 * Resolves with the first line of `lines` (already written) or announced on `written` ('line')
 * for which `match` holds; rejects after `ms`.
 */
export function waitForLine(
  lines: readonly LogLine[],
  written: EventEmitter,
  match: (line: LogLine) => boolean,
  ms: number,
): Promise<LogLine> {
  return new Promise((resolve, reject) => {
    const found = lines.find(match);
    if (found) return resolve(found);
    const timer = setTimeout(() => {
      written.off('line', onLine);
      reject(new Error(`the expected log line was not written within ${ms} ms`));
    }, ms);
    const onLine = (line: LogLine): void => {
      if (!match(line)) return;
      clearTimeout(timer);
      written.off('line', onLine);
      resolve(line);
    };
    written.on('line', onLine);
  });
}

export interface LogCapture {
  /** The stream to give pino: one JSON object a line. */
  sink: Writable;
  /** The parsed lines so far. */
  readonly lines: readonly LogLine[];
  /** Resolves with the first line (already written or to come) for which `match` holds. */
  waitFor(match: (line: LogLine) => boolean, ms?: number): Promise<LogLine>;
}

/** A sink that parses, keeps and announces every line written to it. */
export function captureLog(): LogCapture {
  const lines: LogLine[] = [];
  const written = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        written.emit('line', line);
      }
      done();
    },
  });
  return { sink, lines, waitFor: (match, ms = 15_000) => waitForLine(lines, written, match, ms) };
}
