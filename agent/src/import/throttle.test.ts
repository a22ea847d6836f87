import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../test/support/manual-clock.js';
import { Throttle } from './throttle.js';

describe('Throttle', () => {
  it.each([
    [1_000_000, 64 * 1024, 160],
    [100_000, 1000, 500],
    [10_000_000, 1024 * 1024, 40],
  ])('at %i B/s, %i-byte chunks (%i of them) take bytes/rate, less the burst', async (rate, chunk, count) => {
    const clock = new ManualClock();
    const t = new Throttle(rate, clock);
    for (let i = 0; i < count; i++) await t.take(chunk);
    const seconds = clock.time / 1000;
    const ideal = (chunk * count) / rate;
    // The first tenth of a second's worth passes at once; nothing else is free.
    expect(seconds).toBeGreaterThanOrEqual(ideal - 0.1 - 1e-9);
    expect(seconds).toBeLessThanOrEqual(ideal);
  });

  it('an idle spell earns at most the burst', async () => {
    const clock = new ManualClock();
    const t = new Throttle(1000, clock);
    clock.advance(60_000);
    await t.take(100); // the burst: 100 bytes
    expect(clock.sleeps).toEqual([]);
    await t.take(500);
    expect(clock.sleeps).toEqual([500]);
  });

  it('debit answers the wait a paused reader owes, and the wait pays the debt', () => {
    const clock = new ManualClock();
    const t = new Throttle(1000, clock);
    expect(t.debit(100)).toBe(0); // the burst
    expect(t.debit(500)).toBe(500);
    clock.advance(500);
    expect(t.debit(0)).toBe(0);
    expect(t.debit(1000)).toBe(1000);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new Throttle(0)).toThrow(RangeError);
  });

  it('a cancelled wait stops the reader', async () => {
    const t = new Throttle(10);
    const ac = new AbortController();
    const waiting = t.take(1000, ac.signal);
    ac.abort();
    await expect(waiting).rejects.toThrow(/abort/i);
  });
});
