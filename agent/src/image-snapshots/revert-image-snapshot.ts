import { realpath, rm } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { convert, create } from '../qemu/qemu-img.js';
import { assertNotInChain, verifyChain } from '../snapshots/chain-safety.js';
import { fileOf, shownOf } from '../snapshots/snap-dir.js';
import {
  type ImageLayout,
  type ImageTarget,
  type SnapLayout,
  backedBy,
  readImageLayout,
  snapshotFile,
} from './image-layout.js';
import { overlayBackingName } from './overlay-name.js';

/**
 * Datastore snap_revert (docs/image-datastore.md#snapshots-of-persistent-images): the image's
 * current state becomes snapshot `id`'s content, every snapshot kept. A chain gets a new, empty
 * qcow2 overlay on the snapshot's file as its active layer (written under a temporary name and
 * renamed over the old active file, which SOURCE, or `.snap/0 -> SOURCE`'s chain, leads to); when
 * SOURCE is a standalone copy of the current state, it also becomes a standalone copy of the
 * snapshot. Full copies: SOURCE is replaced by a copy of the snapshot. `<SOURCE>.md5sum` goes.
 * A repeat gives the same state. Returns the layout it worked on.
 */
export async function revertImageSnapshot(t: ImageTarget, id: number): Promise<ImageLayout> {
  const layout = await readImageLayout(t);
  const fileId = layout.kind === 'none' ? undefined : snapshotFile(layout, id);
  if (layout.kind === 'none' || fileId === undefined) {
    throw new StorageError('NOT_FOUND', `${t.what}: snapshot ${id} does not exist (no ${snapShown(t, id)})`);
  }
  const snapFile = fileOf(layout.snap, fileId);
  if (layout.kind === 'copies') {
    await t.copy(snapFile, t.source, { sparse: true, signal: t.signal });
  } else if (layout.role === 'copy') {
    // The long copy first, under a temporary name: when it fails, nothing has changed.
    await writeAtomically(t.source, async (temp) => {
      await flatCopy(t, snapFile, temp);
      await newActiveLayer(t, layout, fileId);
    });
  } else {
    await newActiveLayer(t, layout, fileId);
  }
  await rm(t.md5sum, { force: true });
  return layout;
}

/** Replaces the active file by an empty qcow2 overlay on file `fileId`. */
async function newActiveLayer(
  t: ImageTarget,
  layout: Extract<SnapLayout, { kind: 'chain' }>,
  fileId: number,
): Promise<void> {
  const { snap, activeId } = layout;
  if (fileId === activeId) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the active layer, not a snapshot`,
    );
  }
  const children = await backedBy(layout, activeId);
  if (children.length > 0) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, children[0] ?? activeId)} is built on the active layer ${shownOf(snap, activeId)}`,
    );
  }
  const chain = layout.chains.get(fileId) ?? [];
  const active = fileOf(snap, activeId);
  await assertNotInChain(active, chain, t.what, shownOf(snap, activeId));
  const backing = { name: await overlayBackingName(t, layout, fileId), format: chain[0]?.format ?? 'qcow2' };
  const wanted = await realpath(fileOf(snap, fileId));
  await writeAtomically(active, async (temp) => {
    await create(temp, { format: 'qcow2', backing, what: t.what, signal: t.signal });
    // Before it replaces anything, the new layer must open (its name validated as every chain's is)
    // onto the snapshot's file, from the snap dir it is renamed into.
    const [top] = await verifyChain(temp, {
      what: t.what,
      signal: t.signal,
      format: 'qcow2',
      scope: t.scope,
    });
    const reached = top?.fullBackingFilename;
    if (reached === undefined || (await realpath(reached)) !== wanted) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${t.what}: an overlay backed by "${backing.name}" does not open onto ${shownOf(snap, fileId)}`,
      );
    }
  });
}

/** A standalone copy of what `file`'s chain reads, in the image's format. */
async function flatCopy(t: ImageTarget, file: string, temp: string): Promise<void> {
  await convert(file, temp, {
    sourceFormat: 'qcow2',
    format: t.format,
    sparse: true,
    what: t.what,
    signal: t.signal,
    timeoutMs: WHOLE_DISK_TIMEOUT_MS,
  });
}

function snapShown(t: ImageTarget, id: number): string {
  return `${t.snapDir.slice(t.snapDir.lastIndexOf('/') + 1)}/${id}`;
}
