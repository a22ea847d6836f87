import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { type ImageServer, startImageServer } from '../../../test/support/image-server.js';
import { ManualClock } from '../../../test/support/manual-clock.js';
import { httpSource, MAX_RETRIES, StartOver } from './http-source.js';

let server: ImageServer;
const BODY = randomBytes(256 * 1024);

beforeAll(async () => {
  server = await startImageServer();
});
afterAll(async () => {
  await server.close();
});

/** Everything the source yields, concatenated, with the retries it logged. */
async function fetchAll(url: string, retries = MAX_RETRIES) {
  const clock = new ManualClock();
  const retried: Array<{ why: string; offset: number }> = [];
  const totals: Array<number | undefined> = [];
  const chunks: Buffer[] = [];
  for await (const c of httpSource(new URL(url), {
    ca: [],
    signal: new AbortController().signal,
    what: 'cp image 7',
    budget: { retries },
    clock,
    onTotal: (t) => totals.push(t),
    onRetry: (why, offset) => retried.push({ why, offset }),
  }))
    chunks.push(c);
  return { body: Buffer.concat(chunks), retried, totals, sleeps: clock.sleeps };
}

async function failureOf(p: Promise<unknown>): Promise<StorageError | StartOver> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StorageError || err instanceof StartOver) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('httpSource', () => {
  it('fetches a whole file in one request and announces its size', async () => {
    const url = server.serve('/plain', BODY, { scenario: 'plain' });
    const got = await fetchAll(url);
    expect(got.body.equals(BODY)).toBe(true);
    expect(got.totals).toEqual([BODY.length]);
    expect(server.requests('/plain')).toHaveLength(1);
  });

  it('resumes after a reset with a Range request carrying If-Range (the ETag)', async () => {
    const url = server.serve('/flaky', BODY, { scenario: 'flaky', cutAt: 100_000 });
    const got = await fetchAll(url);
    expect(got.body.equals(BODY)).toBe(true);
    const seen = server.requests('/flaky');
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ status: 206, ifRange: expect.stringMatching(/^"/) as unknown });
    expect(seen[1]?.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(seen[1]?.range ?? '')?.[0])).toBeGreaterThan(0);
    expect(got.retried).toHaveLength(1);
    expect(got.sleeps).toEqual([500]);
  });

  it('retries a 503 and follows a redirect', async () => {
    server.serve('/busy', BODY, { failFirst: 2 });
    const url = server.redirect('/moved', '/busy');
    const got = await fetchAll(url);
    expect(got.body.equals(BODY)).toBe(true);
    expect(server.requests('/busy').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(got.sleeps).toEqual([500, 1000]);
  });

  it('a body that stays short of its Content-Length is DATA_LOSS after the retries', async () => {
    const url = server.serve('/cut', BODY, { scenario: 'truncated', cutAt: 50_000 });
    const err = await failureOf(fetchAll(url));
    expect(err).toMatchObject({ reason: 'CHECKSUM_MISMATCH' });
    expect(err.message).toMatch(
      /truncated: the body ended after 50000 of its 262144 bytes \(after 4 tries\)/,
    );
    expect(server.requests('/cut')).toHaveLength(1 + MAX_RETRIES);
  });

  it('a server that ignores Range on a resume makes the source start over', async () => {
    const url = server.serve('/ignores', BODY, { scenario: 'flaky', cutAt: 1000, resumable: false });
    const err = await failureOf(fetchAll(url));
    expect(err).toBeInstanceOf(StartOver);
    expect(err.message).toMatch(/ignored the Range request/);
    expect(server.requests('/ignores').map((r) => r.status)).toEqual([200, 200]);
  });

  it('a 404 is NOT_FOUND naming the URL; no retry', async () => {
    const url = server.url('/missing.qcow2');
    const err = await failureOf(fetchAll(url));
    expect(err).toMatchObject({ reason: 'NOT_FOUND' });
    expect(err.message).toContain(url);
    expect(server.requests('/missing.qcow2')).toHaveLength(1);
  });

  it('a refused connection is SOURCE_UNAVAILABLE after the retries', async () => {
    const dead = await startImageServer();
    const url = dead.url('/x');
    await dead.close();
    const err = await failureOf(fetchAll(url, 1));
    expect(err).toMatchObject({ reason: 'SOURCE_UNAVAILABLE' });
    expect(err.message).toMatch(/ECONNREFUSED.*\(after 2 tries\)/);
  });
});
