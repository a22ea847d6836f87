import { describe, expect, it } from 'vitest';
import { CERTIFICATE_WARNING_DAYS, MS_PER_DAY, certificateExpiry } from './certificate-expiry.js';

const NOW = Date.parse('2026-12-06T00:00:00Z');

describe('certificateExpiry', () => {
  it.each([
    [400 * MS_PER_DAY, 'ok', 400, 'valid until 2028-01-10 (400 days)'],
    [CERTIFICATE_WARNING_DAYS * MS_PER_DAY, 'ok', 30, 'valid until 2027-01-05 (30 days)'],
    [CERTIFICATE_WARNING_DAYS * MS_PER_DAY - 1, 'warning', 29, 'expires in 29 days (2027-01-04)'],
    [10 * MS_PER_DAY + 1, 'warning', 10, 'expires in 10 days (2026-12-16)'],
    [0, 'expired', 0, 'expired on 2026-12-06'],
    [-3 * MS_PER_DAY, 'expired', -3, 'expired on 2026-12-03'],
  ])('not after now + %d ms: %s, %d days, "%s"', (offset, state, daysLeft, text) => {
    expect(certificateExpiry(NOW + offset, NOW)).toEqual({ state, notAfterMs: NOW + offset, daysLeft, text });
  });
});
