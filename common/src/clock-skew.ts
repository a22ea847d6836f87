// How far apart two hosts' clocks may be (docs/reliability.md#a-clock-jump-on-one-host).

/**
 * Clock skew between the front-end and an agent above this is a failure: a TLS certificate issued
 * "now" on one host is not yet valid on a host that far behind, and one that far ahead may find
 * a certificate expired. `one-storage status` and `doctor` judge by it, and a failed transfer
 * between agents names a skew this large as its likely cause.
 */
export const SKEW_FAILED_MS = 30_000;

const UNITS: readonly [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['min', 60_000],
];

/** "3.0 h ahead of", "10.0 min behind", "45.2 s ahead of": a skew for people. */
export function skewWords(skewMs: number): string {
  const abs = Math.abs(skewMs);
  const [unit, ms] = UNITS.find(([, size]) => abs >= size) ?? ['s', 1_000];
  return `${(abs / ms).toFixed(1)} ${unit} ${skewMs > 0 ? 'ahead of' : 'behind'}`;
}
