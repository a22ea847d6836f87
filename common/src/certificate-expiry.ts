import { X509Certificate } from 'node:crypto';

/** A certificate that expires within this many days earns a warning (status, doctor, Health). */
export const CERTIFICATE_WARNING_DAYS = 30;
export const MS_PER_DAY = 24 * 3600_000;

export type ExpiryState = 'ok' | 'warning' | 'expired';

export interface CertificateExpiry {
  state: ExpiryState;
  notAfterMs: number;
  /** Whole days left (negative once expired). */
  daysLeft: number;
  /** "until 2029-03-10 (825 days)", "expires in 10 days (2026-12-16)", "expired on 2026-12-01". */
  text: string;
}

/** How a certificate's expiry reads at `nowMs`: ok, a warning within 30 days, or expired. */
export function certificateExpiry(notAfterMs: number, nowMs: number): CertificateExpiry {
  const daysLeft = Math.floor((notAfterMs - nowMs) / MS_PER_DAY);
  const date = new Date(notAfterMs).toISOString().slice(0, 10);
  if (notAfterMs <= nowMs) return { state: 'expired', notAfterMs, daysLeft, text: `expired on ${date}` };
  if (daysLeft < CERTIFICATE_WARNING_DAYS)
    return { state: 'warning', notAfterMs, daysLeft, text: `expires in ${daysLeft} days (${date})` };
  return { state: 'ok', notAfterMs, daysLeft, text: `valid until ${date} (${daysLeft} days)` };
}

/** The expiry (ms since the epoch) and subject of a PEM certificate, as one line. */
export function certificateFacts(pem: Buffer | string): { notAfterMs: number; subject: string } {
  const cert = new X509Certificate(pem);
  return { notAfterMs: Date.parse(cert.validTo), subject: cert.subject.split('\n').join(', ') };
}
