import { realpath, rm } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { type Backing, convert, create } from '../qemu/qemu-img.js';
import { assertNotInChain, verifyChain } from '../snapshots/chain-safety.js';
import { fileOf, shownOf } from '../snapshots/snap-dir.js';
import {
  type ImageLayout,
  type ImageTarget,
  type SnapLayout,
  readImageLayout,
  snapshotChain,
  snapshotFile,
} from './image-layout.js';
import { childrenOf } from './snap-graph.js';
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
    await snapshotChain(t, layout, fileId);
    await t.copy(snapFile, t.source, { sparse: true, signal: t.signal, progress: t.progress });
  } else {
    // Every check before anything is written; then the long copy (if any) first, under a
    // temporary name, so that when it fails nothing has changed.
    const layer = await planActiveLayer(t, layout, fileId);
    if (layout.role === 'copy') {
      await writeAtomically(t.source, async (temp) => {
        await flatCopy(t, snapFile, temp);
        await writeActiveLayer(t, layer);
      });
    } else {
      await writeActiveLayer(t, layer);
    }
  }
  await rm(t.md5sum, { force: true });
  return layout;
}

/** The new active layer: where it goes, what it is backed by, and the file it must open onto. */
interface ActiveLayer {
  readonly path: string;
  readonly backing: Backing;
  /** Real path of the snapshot's file. */
  readonly onto: string;
  readonly ontoShown: string;
}

/**
 * Checks that the active layer can be replaced by an overlay on file `fileId` (it is not that file,
 * nothing is built on it, it is not in the snapshot's chain, which is validated here before qemu
 * opens it) and names the backing file.
 */
async function planActiveLayer(
  t: ImageTarget,
  layout: Extract<SnapLayout, { kind: 'chain' }>,
  fileId: number,
): Promise<ActiveLayer> {
  const { snap, activeId } = layout;
  if (fileId === activeId) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, fileId)} is the active layer, not a snapshot`,
    );
  }
  const children = childrenOf(layout.backings, activeId);
  if (children.length > 0) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.what}: ${shownOf(snap, children[0] ?? activeId)} is built on the active layer ${shownOf(snap, activeId)}`,
    );
  }
  const chain = await snapshotChain(t, layout, fileId);
  const path = fileOf(snap, activeId);
  await assertNotInChain(path, chain, t.what, shownOf(snap, activeId));
  return {
    path,
    backing: { name: await overlayBackingName(t, layout, fileId), format: chain[0]?.format ?? 'qcow2' },
    onto: await realpath(fileOf(snap, fileId)),
    ontoShown: shownOf(snap, fileId),
  };
}

/** Writes the empty overlay under a temporary name and renames it over the active layer. */
async function writeActiveLayer(t: ImageTarget, layer: ActiveLayer): Promise<void> {
  await writeAtomically(layer.path, async (temp) => {
    await create(temp, { format: 'qcow2', backing: layer.backing, what: t.what, signal: t.signal });
    // Before it replaces anything, the new layer must open (its name validated as every chain's is)
    // onto the snapshot's file, from the snap dir it is renamed into.
    const [top] = await verifyChain(temp, {
      what: t.what,
      signal: t.signal,
      format: 'qcow2',
      scope: t.scope,
    });
    const reached = top?.fullBackingFilename;
    if (reached === undefined || (await realpath(reached)) !== layer.onto) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${t.what}: an overlay backed by "${layer.backing.name}" does not open onto ${layer.ontoShown}`,
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
    progress: t.progress,
    progressPhase: 'flattening',
  });
}

function snapShown(t: ImageTarget, id: number): string {
  return `${t.snapDir.slice(t.snapDir.lastIndexOf('/') + 1)}/${id}`;
}
