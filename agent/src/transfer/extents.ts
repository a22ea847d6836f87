import { INHERITED_FD_PATH } from '../../../common/src/tools/run-tool.js';
import { type Extent, mergeDataRuns } from '../qemu/image-map.js';
import { map } from '../qemu/qemu-img.js';

/**
 * Below this size a file is sent whole: spawning qemu-img (about 10 ms) costs more than moving a
 * few holes' worth of zeros, and VM directories hold many small files (vm.xml, deployment.N).
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * The data extents (runs of data bytes; everything outside them is a hole) of a regular file of `size` bytes, from `qemu-img map -f raw`, which asks the
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
  const entries = await map(
    { file: INHERITED_FD_PATH, format: 'raw' },
    { what, fd, forceShare: true, ...(signal ? { signal } : {}) },
  );
  return mergeDataRuns(entries, size);
}
