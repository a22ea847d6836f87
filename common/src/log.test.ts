import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type EventEmitter, once } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { redactExportTokens } from './export-tokens.js';
import { createLogger } from './log.js';

const token = (): string => randomBytes(32).toString('base64url');

describe('redactExportTokens', () => {
  it.each([
    ['https://h:7201/export/T/image.qcow2', 'https://h:7201/export/[redacted]/image.qcow2'],
    ['https://h:7201/export/T', 'https://h:7201/export/[redacted]'],
    [
      'a https://a/export/T and https://b/export/T.',
      'a https://a/export/[redacted] and https://b/export/[redacted].',
    ],
  ])('replaces the token of %s', (text, expected) => {
    expect(redactExportTokens(text.replaceAll('T', token()))).toBe(expected);
  });

  it('leaves text without a whole token as it is', () => {
    for (const text of ['/export/short', '/var/lib/one/datastores/1/abc', `/export/${token()}x`]) {
      expect(redactExportTokens(text)).toBe(text);
    }
  });
});

describe('createLogger', () => {
  it('writes no export token, in the message or in any field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-'));
    try {
      const file = join(dir, 'log');
      const fd = openSync(file, 'w');
      const secret = token();
      const url = `https://host01:7201/export/${secret}/image.qcow2`;
      const log = createLogger('test', 'info', fd);
      // The destination (sonic-boom) writes asynchronously and says so with a 'write' event.
      const stream = (log as unknown as Record<symbol, EventEmitter>)[pino.symbols.streamSym] as EventEmitter;
      const written = once(stream, 'write');
      log.info({ url, nested: { source: url } }, `served ${url}`);
      await written;
      closeSync(fd);
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('/export/[redacted]/image.qcow2');
      expect(text).not.toContain(secret);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
