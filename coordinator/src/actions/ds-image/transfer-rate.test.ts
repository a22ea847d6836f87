import { describe, expect, it } from 'vitest';
import { parseTransferRate } from './transfer-rate.js';

describe("LIMIT_TRANSFER_BW in curl's --limit-rate syntax", () => {
  it.each([
    ['0', 0],
    ['500000', 500_000],
    ['200K', 200 * 1024],
    ['200k', 200 * 1024],
    ['3m', 3 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['1P', 1024 ** 5],
    [' 10M ', 10 * 1024 ** 2],
  ])('%j is %d bytes/s', (text, bytes) => {
    expect(parseTransferRate(text)).toBe(bytes);
  });

  it.each(['', 'fast', '1.5M', '10MB', '10 M', '-1', '1e6', '1X', '99999999999999999P'])(
    '%j is refused',
    (text) => {
      expect(() => parseTransferRate(text)).toThrow(/is not a rate as curl's --limit-rate takes it/);
    },
  );
});
