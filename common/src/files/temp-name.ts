import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * Names of work in progress: `.<name>.tmp-<12 hex>` beside its destination (or
 * `.<name>.tmp-<owner>-<12 hex>` when an owner, an agent's name, is to be recognised later), and
 * `.<name>.old-<12 hex>` for an old directory set aside while a new one takes its name. Hidden,
 * and in the destination's own directory: same filesystem, so the final rename is atomic. The
 * agent's stale-temps sweep (agent/src/transfer/stale-temps.ts) reads them back with parseTempName.
 */
export type TempTag = 'tmp' | 'old';

/** Random suffix length (bytes) of temporary names: unique enough for concurrent writers. */
export const TEMP_RANDOM_BYTES = 6;

const TEMP_NAME = /^\.(.+)\.(tmp|old)-(.+)$/;

/** A temporary's name (no directory) for `base`, optionally carrying its owner's name. */
export function tempName(base: string, tag: TempTag = 'tmp', owner?: string): string {
  const random = randomBytes(TEMP_RANDOM_BYTES).toString('hex');
  return `.${base}.${tag}-${owner === undefined ? '' : `${owner}-`}${random}`;
}

/** A hidden name beside `path` for work in progress (`tmp`) or an old directory set aside (`old`). */
export function tempNameBeside(path: string, tag: TempTag = 'tmp'): string {
  return join(dirname(path), tempName(basename(path), tag));
}

/** What a temporary's name says: the name it stands for, its tag, and the rest (owner and random). */
export function parseTempName(name: string): { base: string; tag: TempTag; rest: string } | undefined {
  const m = TEMP_NAME.exec(name);
  if (!m) return undefined;
  return { base: m[1] as string, tag: m[2] as TempTag, rest: m[3] as string };
}
