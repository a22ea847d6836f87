import { StorageError } from '../../../common/src/errors.js';

/** One entry of `qemu-img map --output=json` (used by the data path and by backups). */
export interface MapEntry {
  readonly start: number;
  readonly length: number;
  readonly present?: boolean;
  readonly zero: boolean;
  readonly data: boolean;
}

/** A run of bytes in a file or image: [offset, length] (the data path's manifest carries these). */
export type Extent = readonly [offset: number, length: number];

/** The entries `qemu-img map --output=json` printed, each checked; TOOL_FAILED naming `what` if not. */
export function parseMap(stdout: string, what: string): MapEntry[] {
  let entries: unknown;
  try {
    entries = JSON.parse(stdout);
  } catch {
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img map printed something that is not JSON`);
  }
  if (!Array.isArray(entries))
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img map did not print a list`);
  return entries.map((e: unknown) => {
    const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
    const { start, length, present, zero, data } = o;
    if (
      !isCount(start) ||
      !isCount(length) ||
      typeof zero !== 'boolean' ||
      typeof data !== 'boolean' ||
      (present !== undefined && typeof present !== 'boolean')
    ) {
      throw new StorageError(
        'TOOL_FAILED',
        `${what}: qemu-img map printed an entry without start, length, zero and data`,
      );
    }
    return { start, length, zero, data, ...(present !== undefined ? { present } : {}) };
  });
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Adjacent extents joined (so each becomes one request); empty ones dropped. */
export function mergeExtents(extents: Iterable<Extent>): Extent[] {
  const out: [number, number][] = [];
  for (const [start, length] of extents) {
    if (length <= 0) continue;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === start) last[1] += length;
    else out.push([start, length]);
  }
  return out;
}

/** Extents cut into pieces of at most `max` bytes (a reader or qemu-io allocates a buffer per piece). */
export function splitExtents(extents: readonly Extent[], max: number): Extent[] {
  const out: Extent[] = [];
  for (const [start, length] of extents) {
    for (let off = 0; off < length; off += max) out.push([start + off, Math.min(max, length - off)]);
  }
  return out;
}

/** Sum of the extents' lengths. */
export function extentBytes(extents: readonly Extent[]): number {
  let total = 0;
  for (const [, length] of extents) total += length;
  return total;
}

const extentOf = (e: Pick<MapEntry, 'start' | 'length'>): Extent => [e.start, e.length];

/**
 * The data runs of a raw file of `size` bytes, merged, clamped to the size (qemu rounds the last
 * sector up to 512 bytes).
 */
export function mergeDataRuns(
  entries: ReadonlyArray<Pick<MapEntry, 'start' | 'length' | 'data'>>,
  size: number,
): Extent[] {
  return mergeExtents(
    entries
      .filter((e) => e.data)
      .map((e): Extent => [
        Math.min(e.start, size),
        Math.min(e.start + e.length, size) - Math.min(e.start, size),
      ]),
  );
}

/**
 * Dirty ranges of a bitmap exported by qemu-nbd, read with qemu-img map's `x-dirty-bitmap`: qemu
 * reports the bitmap's bits in the "data" field inverted, so a dirty range is `"data": false`
 * (toolchain notes).
 */
export function dirtyExtents(entries: readonly MapEntry[]): Extent[] {
  return mergeExtents(entries.filter((e) => !e.data).map(extentOf));
}

/** Ranges allocated nowhere in a standalone image (they read as zero only while it has no backing). */
export function unallocatedExtents(entries: readonly MapEntry[]): Extent[] {
  return mergeExtents(entries.filter((e) => e.present === false).map(extentOf));
}
