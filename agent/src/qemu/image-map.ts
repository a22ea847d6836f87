import { StorageError } from '../../../common/src/errors.js';

/** One entry of `qemu-img map --output=json` (used by the data path and by backups). */
export interface MapEntry {
  readonly start: number;
  readonly length: number;
  readonly present?: boolean;
  readonly zero: boolean;
  readonly data: boolean;
}

export interface Extent {
  readonly start: number;
  readonly length: number;
}

/** The entries `qemu-img map --output=json` printed; TOOL_FAILED naming `what` when it is not a list. */
export function parseMap(stdout: string, what: string): MapEntry[] {
  let entries: unknown;
  try {
    entries = JSON.parse(stdout);
  } catch {
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img map printed something that is not JSON`);
  }
  if (!Array.isArray(entries))
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img map did not print a list`);
  return entries as MapEntry[];
}

/** Adjacent extents joined, so each becomes one request. */
export function mergeExtents(extents: readonly Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start)
      out[out.length - 1] = { start: last.start, length: last.length + e.length };
    else out.push({ start: e.start, length: e.length });
  }
  return out;
}

/** Extents cut into pieces of at most `max` bytes (qemu-io allocates a buffer per request). */
export function splitExtents(extents: readonly Extent[], max: number): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    for (let off = 0; off < e.length; off += max) {
      out.push({ start: e.start + off, length: Math.min(max, e.length - off) });
    }
  }
  return out;
}

/**
 * Dirty ranges of a bitmap exported by qemu-nbd, read with qemu-img map's `x-dirty-bitmap`: qemu
 * reports the bitmap's bits in the "data" field inverted, so a dirty range is `"data": false`
 * (toolchain notes).
 */
export function dirtyExtents(entries: readonly MapEntry[]): Extent[] {
  return mergeExtents(entries.filter((e) => !e.data));
}

/** Ranges allocated nowhere in a standalone image (they read as zero only while it has no backing). */
export function unallocatedExtents(entries: readonly MapEntry[]): Extent[] {
  return mergeExtents(entries.filter((e) => e.present === false));
}
