/** curl's --limit-rate units (1024-based), the syntax LIMIT_TRANSFER_BW is written in. */
const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};
const RATE = /^(\d{1,15})([kmgtp]?)$/i;

/**
 * DATASTORE/TEMPLATE/LIMIT_TRANSFER_BW in bytes per second. OpenNebula hands the value to curl as
 * `--limit-rate`, so it is written as curl takes it: a whole number of bytes per second, or with
 * one suffix K, M, G, T or P (either case, powers of 1024): `500000`, `200K`, `3m`, `1G`
 * (docs/image-datastore.md#cp). Anything else throws, saying what is accepted; curl too refuses
 * such a value, and fs's download then fails.
 */
export function parseTransferRate(text: string): number {
  const m = RATE.exec(text.trim());
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const bytes = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new Error(
      `${JSON.stringify(text.slice(0, 40))} is not a rate as curl's --limit-rate takes it (bytes per second, a whole number optionally followed by K, M, G, T or P)`,
    );
  }
  return bytes;
}
