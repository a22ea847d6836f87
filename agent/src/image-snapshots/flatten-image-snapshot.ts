import { rename, rm } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { convert } from '../qemu/qemu-img.js';
import { fileOf } from '../snapshots/snap-dir.js';
import {
  type ImageLayout,
  type ImageTarget,
  readImageLayout,
  snapshotChain,
  snapshotFile,
} from './image-layout.js';

/**
 * Datastore snap_flatten (docs/image-datastore.md#snapshots-of-persistent-images): SOURCE becomes
 * a standalone image in IMAGE/FORMAT holding snapshot `id`'s content (`qemu-img convert` of the
 * chain up to the snapshot, pinned formats, into a temporary beside SOURCE renamed over it: a
 * SOURCE that links into the snap dir becomes a file), then `<SOURCE>.snap` and `<SOURCE>.md5sum`
 * go. The snap dir is renamed away before it is removed, so a repeat after any failure either
 * flattens again from the same files or finds no snap dir and changes nothing.
 */
export async function flattenImageSnapshot(
  t: ImageTarget,
  id: number,
): Promise<{ changed: boolean; layout: ImageLayout }> {
  const layout = await readImageLayout(t);
  if (layout.kind === 'none') return { changed: false, layout };
  const fileId = snapshotFile(layout, id);
  if (fileId === undefined) {
    throw new StorageError(
      'NOT_FOUND',
      `${t.what}: snapshot ${id} does not exist (no ${layout.snap.short}/${id})`,
    );
  }
  // Every file of a chain is qcow2; a full copy is in the image's own format.
  const [top] = await snapshotChain(t, layout, fileId);
  const sourceFormat = top?.format ?? t.format;
  await writeAtomically(t.source, (temp) =>
    convert(fileOf(layout.snap, fileId), temp, {
      sourceFormat,
      format: t.format,
      sparse: true,
      what: t.what,
      signal: t.signal,
      timeoutMs: WHOLE_DISK_TIMEOUT_MS,
      progress: t.progress,
      progressPhase: 'flattening',
    }),
  );
  // Renamed first (one atomic step), then removed: a failure half-way leaves a temporary that the
  // stale-temps sweep removes, never a half-emptied snap dir.
  const aside = tempNameBeside(t.snapDir);
  await rename(t.snapDir, aside);
  await rm(aside, { recursive: true, force: true });
  await rm(t.md5sum, { force: true });
  return { changed: true, layout };
}
