import { INHERITED_FD_PATH, runTool } from '../../../common/src/tools/run-tool.js';
import { type MapEntry, parseMap } from '../qemu/image-map.js';

/** A run of data bytes in a file: [offset, length]. Everything outside the runs is a hole. */
export type Extent = readonly [offset: number, length: number];

/**
 * Below this size a file is sent whole: spawning qemu-img (about 10 ms) costs more than moving a
 * few holes' worth of zeros, and VM directories hold many small files (vm.xml, deployment.N).
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * The data extents of a regular file of `size` bytes, from `qemu-img map -f raw`, which asks the
 * kernel with SEEK_DATA/SEEK_HOLE (about 10 ms for an 8 GiB image). Adjacent data runs are merged
 * and everything is clamped to the file's size (qemu rounds the last sector up to 512 bytes).
 * `-U` because a running VM may hold the image: the map only reads metadata.
 */
export async function dataExtents(
  fd: number,
  label: string,
  size: number,
  signal?: AbortSignal,
): Promise<Extent[]> {
  if (size === 0) return [];
  if (size <= SMALL_FILE_BYTES) return [[0, size]];
  // qemu-img reads the very file we opened and verified, through its own inherited descriptor.
  const what = `map the data extents of ${label}`;
  const { stdout } = await runTool(
    'qemu-img',
    ['map', '-U', '--output=json', '-f', 'raw', INHERITED_FD_PATH],
    {
      what,
      fd,
      ...(signal ? { signal } : {}),
    },
  );
  return mergeDataRuns(parseMap(stdout, what), size);
}

export function mergeDataRuns(
  entries: ReadonlyArray<Pick<MapEntry, 'start' | 'length' | 'data'>>,
  size: number,
): Extent[] {
  const out: [number, number][] = [];
  for (const e of entries) {
    if (!e.data) continue;
    const start = Math.min(e.start, size);
    const end = Math.min(e.start + e.length, size);
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === start) last[1] += end - start;
    else out.push([start, end - start]);
  }
  return out;
}

/** Sum of the extents' lengths. */
export function extentBytes(extents: readonly Extent[]): number {
  let total = 0;
  for (const [, length] of extents) total += length;
  return total;
}
