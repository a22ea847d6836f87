import { describe, expect, it } from 'vitest';
import { describeProgress, etaMs, formatBytes, formatDuration, percentDone } from './format-progress.js';

describe('progress figures', () => {
  it('reads as people expect', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(3 * 1024)).toBe('3.0 KiB');
    expect(formatBytes(12.5 * 1024 ** 2)).toBe('12.5 MiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.50 GiB');
    expect(formatDuration(44_600)).toBe('45 s');
    expect(formatDuration(200_000)).toBe('3 min 20 s');
    expect(formatDuration(7_500_000)).toBe('2 h 05 min');
  });

  it('leaves out what is not known yet', () => {
    const gib = 1024 ** 3;
    expect(describeProgress({ done: gib, total: 4 * gib, rate: 64 * 1024 ** 2 })).toBe(
      '1.00 GiB of 4.00 GiB (25%), 64.0 MiB/s, about 48 s left',
    );
    expect(describeProgress({ done: gib, total: 0, rate: 0 })).toBe('1.00 GiB');
    expect(etaMs({ done: 1, total: 0, rate: 5 })).toBeUndefined();
    expect(percentDone({ done: 3, total: 0, rate: 0 })).toBeUndefined();
    expect(percentDone({ done: 5, total: 4, rate: 0 })).toBe(100);
  });
});
