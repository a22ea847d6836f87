import { describe, expect, it } from 'vitest';
import { skewWords } from './clock-skew.js';

describe('skewWords', () => {
  it.each([
    [45_200, '45.2 s ahead of'],
    [-600_000, '10.0 min behind'],
    [3 * 3_600_000, '3.0 h ahead of'],
    [-2 * 86_400_000, '2.0 d behind'],
  ])('%d ms reads "%s"', (ms, words) => {
    expect(skewWords(ms)).toBe(words);
  });
});
