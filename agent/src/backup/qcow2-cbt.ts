import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { splitExtents, dirtyExtents, unallocatedExtents } from '../qemu/image-map.js';
import { bitmap, create, describe, map, rebase } from '../qemu/qemu-img.js';
import { qemuIo } from '../qemu/qemu-io.js';
import { startNbdExport } from '../qemu/qemu-nbd.js';
import { MIB } from '../../../common/src/units.js';

/** One qemu-io request at most this long: it allocates a buffer of the request's size. */
const MAX_REQUEST = 32 * MIB;

export interface CbtOptions {
  readonly what: string;
  readonly signal: AbortSignal;
}

/** Persistent bitmaps of a qcow2 file (`qemu-img info`: there is no `qemu-img bitmap --list`). */
export async function listBitmaps(file: string, o: CbtOptions): Promise<string[]> {
  return (await describe(file, 'qcow2', o)).bitmaps;
}

export async function addBitmap(file: string, name: string, o: CbtOptions): Promise<void> {
  await bitmap(file, 'add', name, o);
}

export async function removeBitmap(file: string, name: string, o: CbtOptions): Promise<void> {
  await bitmap(file, 'remove', name, o);
}

/**
 * The clusters of a powered-off qcow2 disk changed since `bitmap` was added, copied into a new
 * qcow2 file `out` (whose backing name is then `backing`, for `qemu-img rebase -u` by a restore).
 * qemu-nbd exports the disk read-only with the bitmap; qemu-img map lists the dirty ranges; `out`
 * starts as a qcow2 over the NBD export and qemu-io reads each dirty range with copy-on-read, which
 * writes exactly those clusters into `out` (all-zero ones as zero clusters, so a range the guest
 * zeroed stays zero after a rebase onto the previous backup).
 */
export async function copyChangedBlocks(
  disk: string,
  bitmapName: string,
  out: string,
  backing: string,
  o: CbtOptions,
): Promise<void> {
  const nbd = await startNbdExport(disk, bitmapName, o.what, o.signal);
  try {
    const imageOpts = `driver=nbd,server.type=unix,server.path=${nbd.socket},x-dirty-bitmap=qemu:dirty-bitmap:${bitmapName}`;
    const dirty = dirtyExtents(await map({ imageOpts }, o));
    await create(out, { ...o, format: 'qcow2', backing: { name: nbd.uri, format: 'raw' } });
    await qemuIo(
      out,
      splitExtents(dirty, MAX_REQUEST).map(([start, length]) => `read -q ${start} ${length}`),
      { ...o, copyOnRead: true, timeoutMs: WHOLE_DISK_TIMEOUT_MS },
    );
  } finally {
    await nbd.stop();
  }
  await rebaseName(out, backing, o);
}

/**
 * Makes every unallocated range of a standalone qcow2 an explicit zero cluster (`write -z`): such a
 * file then reads the same whatever backing file a consumer gives it. Needed for a full backup
 * written where an increment was expected (a new chain), which a restore rebases onto the previous
 * increment: unallocated clusters would read that older data instead of zeroes.
 */
export async function makeZeroesExplicit(file: string, o: CbtOptions): Promise<void> {
  const holes = unallocatedExtents(await map({ file, format: 'qcow2' }, o));
  await qemuIo(
    file,
    splitExtents(holes, MAX_REQUEST).map(([start, length]) => `write -q -z ${start} ${length}`),
    { ...o, timeoutMs: WHOLE_DISK_TIMEOUT_MS },
  );
}

/** Sets the stored backing name only (`rebase -u`, a qcow2 backing file); '' makes the file standalone. */
export async function rebaseName(file: string, backing: string, o: CbtOptions): Promise<void> {
  await rebase(file, {
    ...o,
    unsafe: true,
    backing: backing === '' ? undefined : { name: backing, format: 'qcow2' },
  });
}
