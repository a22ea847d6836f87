import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { acceptDigest, chooseDigest, offeredDigests, runningDigest } from './digest-algorithms.js';

describe('data-path digest choice', () => {
  it('a receiver offers XXH3 then SHA-256 over TLS, SHA-256 alone in plaintext', () => {
    expect(offeredDigests(false)).toEqual(['xxh3-64', 'sha256']);
    expect(offeredDigests(true)).toEqual(['sha256']);
  });

  it('the sender takes the first offer it knows over TLS, SHA-256 in plaintext or for an old receiver', () => {
    expect(chooseDigest(['xxh3-64', 'sha256'], true)).toBe('xxh3-64');
    expect(chooseDigest(['blake9', 'sha256', 'xxh3-64'], true)).toBe('sha256');
    expect(chooseDigest(['xxh3-64', 'sha256'], false)).toBe('sha256');
    expect(chooseDigest(undefined, true)).toBe('sha256');
    expect(chooseDigest(undefined, false)).toBe('sha256');
  });

  it('the sender refuses an offer with nothing it may use, or a malformed one, in one line', () => {
    expect(() => chooseDigest(['blake9'], true)).toThrow(
      /no data checksum in common: the receiver offers "blake9", this agent uses xxh3-64, sha256$/,
    );
    expect(() => chooseDigest(['xxh3-64'], false)).toThrow(/sha256 \(the plaintext mode needs it\)/);
    for (const bad of [[], 'sha256', [1], ['x'.repeat(33)], Array(17).fill('sha256')])
      expect(() => chooseDigest(bad, true)).toThrow(/^malformed digest offer in HELLO$/);
  });

  it('the receiver accepts only what it knows and offered; an old sender names nothing (SHA-256)', () => {
    expect(acceptDigest('xxh3-64', ['xxh3-64', 'sha256'])).toBe('xxh3-64');
    expect(acceptDigest(undefined, ['xxh3-64', 'sha256'])).toBe('sha256');
    expect(() => acceptDigest('xxh9-64', ['xxh3-64', 'sha256'])).toThrow(
      /^the sender checks data with "xxh9-64", an algorithm this agent does not know \(it knows xxh3-64, sha256\)$/,
    );
    expect(() => acceptDigest(7, ['sha256'])).toThrow(/"7", an algorithm this agent does not know/);
    expect(() => acceptDigest('xxh3-64', ['sha256'])).toThrow(/which this agent did not offer \(sha256\)/);
  });

  it('digests are the same however the stream is cut, and differ on one flipped bit', () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251));
    for (const algorithm of ['xxh3-64', 'sha256'] as const) {
      const whole = runningDigest(algorithm);
      whole.update(data);
      const parts = runningDigest(algorithm);
      for (let at = 0; at < data.length; at += 4099) parts.update(data.subarray(at, at + 4099));
      const d = whole.digest();
      expect(parts.digest()).toEqual(d);
      expect(d.length).toBe(algorithm === 'sha256' ? 32 : 8);
      const flipped = Buffer.from(data);
      flipped[50_000] = (flipped[50_000] as number) ^ 0x10;
      const other = runningDigest(algorithm);
      other.update(flipped);
      expect(other.digest()).not.toEqual(d);
    }
    const sha = runningDigest('sha256');
    sha.update(data);
    expect(sha.digest()).toEqual(createHash('sha256').update(data).digest());
  });
});
