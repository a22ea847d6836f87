import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { fileOf, shownOf } from '../snapshots/snap-dir.js';
import { type ImageLayout, type ImageTarget, readImageLayout, snapshotFile } from './image-layout.js';
import { childrenOf } from './snap-graph.js';

/**
 * Datastore snap_delete (docs/image-datastore.md#snapshots-of-persistent-images): removes the file
 * that holds snapshot `id` (following `.current`) and `<id>.current`, and `<SOURCE>.md5sum`. A
 * snapshot that another file is built on, or that is the active layer, is refused (BAD_LAYOUT):
 * removing it would break the chain, and nothing is changed. A symlink entry is removed itself,
 * never its target. An absent snapshot (or snap dir) is a success that changes nothing.
 */
export async function deleteImageSnapshot(
  t: ImageTarget,
  id: number,
): Promise<{ changed: boolean; layout: ImageLayout }> {
  const layout = await readImageLayout(t);
  if (layout.kind === 'none') return { changed: false, layout };
  const fileId = snapshotFile(layout, id);
  if (fileId === undefined) return { changed: false, layout };
  const { snap } = layout;
  if (layout.kind === 'chain' && fileId === layout.activeId) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the image's active layer, not a snapshot`,
    );
  }
  const children = layout.kind === 'chain' ? childrenOf(layout.backings, fileId) : [];
  if (children.length > 0) {
    const shown = children.map((k) => shownOf(snap, k)).join(', ');
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the backing file of ${shown}; removing it would break that chain`,
    );
  }
  await rm(fileOf(snap, fileId));
  await rm(join(snap.dir, `${id}.current`), { force: true });
  await rm(t.md5sum, { force: true });
  return { changed: true, layout };
}
