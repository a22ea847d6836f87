import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { StorageError } from '../../../common/src/errors.js';

/**
 * The end-to-end check of each file's data stream on the data path, and how the two agents agree
 * on it (docs/architecture.md, "The data path").
 *
 * - `sha256`: what the authenticated plaintext mode needs: there the HMAC over the manifest and
 *   these digests is what authenticates every data byte, so the digest must be collision-resistant.
 *   Also what an agent that names no algorithm (one from before the choice existed) uses.
 * - `xxh3-64`: under TLS, which already authenticates and integrity-checks every record, the digest
 *   only has to catch accidental damage TLS cannot see: a bit flipped in memory or on a bus between
 *   the sender's read and its encryption, or between the receiver's decryption and its write, and
 *   bugs in between. XXH3 (64-bit) misses a random change with probability 2^-64 and costs about a
 *   twelfth of SHA-256's CPU (17.8 against 1.5 GiB per CPU-second here).
 *
 * The receiver offers what it accepts in HELLO (`digests`, preferred first); the sender picks the
 * first it knows and may use, and names it in the MANIFEST (`digest`), which the transcript MAC
 * covers. Either side refuses a choice it does not know with a one-line error.
 */
export const DIGEST_ALGORITHMS = ['xxh3-64', 'sha256'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

/** What a peer that names no algorithm (an agent from before the choice existed) uses. */
export const LEGACY_DIGEST: DigestAlgorithm = 'sha256';

/** Bounds on a HELLO offer: only a broken or hostile peer sends more. */
const MAX_OFFERED = 16;
const MAX_NAME_CHARS = 32;

/** A running digest of one file's data stream. */
export interface RunningDigest {
  update(bytes: Uint8Array): void;
  digest(): Buffer;
}

type XxhashModule = typeof import('@node-rs/xxhash');
let xxhash: XxhashModule | undefined;

/**
 * The native XXH3 module, loaded on the first transfer that uses it: loading it costs about 4 MB
 * of resident memory, which an idle agent (the footprint target: 80 MB) does not pay.
 */
function xxh3(): XxhashModule['xxh3'] {
  xxhash ??= createRequire(import.meta.url)('@node-rs/xxhash') as XxhashModule;
  return xxhash.xxh3;
}

export function runningDigest(algorithm: DigestAlgorithm): RunningDigest {
  if (algorithm === 'sha256') {
    const h = createHash('sha256');
    return { update: (b) => void h.update(b), digest: () => h.digest() };
  }
  const h = xxh3().Xxh3.withSeed();
  return {
    update: (b) => void h.update(b),
    digest: () => {
      const out = Buffer.allocUnsafe(8);
      out.writeBigUInt64BE(h.digest());
      return out;
    },
  };
}

export function isDigestAlgorithm(value: unknown): value is DigestAlgorithm {
  return typeof value === 'string' && (DIGEST_ALGORITHMS as readonly string[]).includes(value);
}

/** What a receiver offers: SHA-256 alone in the plaintext mode, where it is the authentication. */
export function offeredDigests(plaintext: boolean): DigestAlgorithm[] {
  return plaintext ? ['sha256'] : [...DIGEST_ALGORITHMS];
}

/** A peer's text, safe for a one-line message. */
function quoted(value: unknown): string {
  return JSON.stringify(String(value).slice(0, MAX_NAME_CHARS));
}

/**
 * The sender's choice from the receiver's HELLO `digests` (undefined: a receiver from before the
 * choice, which checks SHA-256). Over TLS the first offered algorithm this agent knows; in the
 * plaintext mode SHA-256, whatever else is offered.
 */
export function chooseDigest(offer: unknown, overTls: boolean): DigestAlgorithm {
  if (offer === undefined) return LEGACY_DIGEST;
  if (
    !Array.isArray(offer) ||
    offer.length === 0 ||
    offer.length > MAX_OFFERED ||
    !offer.every((a) => typeof a === 'string' && a.length <= MAX_NAME_CHARS)
  )
    throw new StorageError('TRANSFER_FAILED', 'malformed digest offer in HELLO');
  const usable = (offer as string[]).filter(isDigestAlgorithm).filter((a) => overTls || a === 'sha256');
  const chosen = usable[0];
  if (chosen) return chosen;
  const known = overTls ? DIGEST_ALGORITHMS.join(', ') : 'sha256 (the plaintext mode needs it)';
  throw new StorageError(
    'TRANSFER_FAILED',
    `no data checksum in common: the receiver offers ${offer.map(quoted).join(', ')}, this agent uses ${known}`,
  );
}

/**
 * The receiver's check of the sender's choice, as the MANIFEST names it (undefined: a sender from
 * before the choice, which sends SHA-256): it must be one this agent knows and offered.
 */
export function acceptDigest(chosen: unknown, offered: readonly DigestAlgorithm[]): DigestAlgorithm {
  const algorithm = chosen === undefined ? LEGACY_DIGEST : chosen;
  if (!isDigestAlgorithm(algorithm))
    throw new StorageError(
      'TRANSFER_FAILED',
      `the sender checks data with ${quoted(algorithm)}, an algorithm this agent does not know (it knows ${DIGEST_ALGORITHMS.join(', ')})`,
    );
  if (!offered.includes(algorithm))
    throw new StorageError(
      'TRANSFER_FAILED',
      `the sender checks data with ${algorithm}, which this agent did not offer (${offered.join(', ')})`,
    );
  return algorithm;
}
