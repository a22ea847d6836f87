import { link, lstat, mkdir, readdir, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { replaceIntoPlace, writeAtomically } from '../../../common/src/files/atomic-file.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { StoredNames } from '../paths/stored-name.js';
import { relink, snapshotIdOf } from '../snapshots/snap-dir.js';

/** Where each TM driver keeps a disk after restore (docs/backups.md#tm-restore). */
export type RestoreLayout = 'plain' | 'snap-dir' | 'image';

export interface Placement {
  readonly layout: RestoreLayout;
  readonly format: ImageFormat;
  /** Local `<vmdir>/disk.N` and `<vmdir>/disk.N.snap`. */
  readonly disk: string;
  readonly diskSnap: string;
  /** Local image SOURCE and `<SOURCE>.snap` (layout image). */
  readonly source?: string;
  readonly imageSnap?: string;
  readonly names: StoredNames;
  /**
   * Called once `disk` reads the restored data: from then on the prepared file must not be
   * removed on failure (the disk may lead to it), and a retry of the restore finishes the layout.
   */
  readonly committed: () => void;
}

/** The first (and, after a restore, only) snapshot file: `.snap/0`. */
const FIRST = '0';

/**
 * Puts the prepared file `file` (beside its destination) in place for `p.layout`. Every step is a
 * rename, a hard link or a symlink replaced by rename, ordered so that `disk` always reads either
 * the old data or the restored data, never a mix, and never dangles: the disk is pointed at the
 * new file first; what the old layout held (snapshots, the old image) goes only afterwards.
 */
export async function placeDisk(file: string, p: Placement): Promise<void> {
  switch (p.layout) {
    case 'plain':
      // Local mode (OpenNebula's ssh restore): disk.N is the file; its snapshots go.
      await replaceIntoPlace(file, p.disk);
      p.committed();
      await rm(p.diskSnap, { recursive: true, force: true });
      return;
    case 'snap-dir':
      await placeInSnapDir(file, p);
      return;
    case 'image':
      await placeImage(file, p);
      return;
  }
}

/**
 * Shared mode, qcow2/restore's layout: `disk.N -> disk.N.snap/0`, the self link beside it. The
 * file enters the snap dir under a number above every other, the disk is linked to it, the old
 * entries go, and it takes the name `0` by a hard link before its own name is dropped.
 */
async function placeInSnapDir(file: string, p: Placement): Promise<void> {
  const st = await lstat(p.diskSnap).catch(() => undefined);
  if (st && !st.isDirectory()) await rm(p.diskSnap, { force: true });
  await mkdir(p.diskSnap, { recursive: true });
  const self = basename(p.diskSnap);
  const ids = (await readdir(p.diskSnap)).map(snapshotIdOf).filter((id): id is number => id !== undefined);
  const high = String(ids.length > 0 ? Math.max(...ids) + 1 : 0);
  const entry = join(p.diskSnap, high);
  await rename(file, entry);
  try {
    await relink(p.disk, await p.names.nameFor(entry, { dir: dirname(p.disk) }));
  } catch (err) {
    await rm(entry, { force: true });
    throw err;
  }
  p.committed();
  for (const name of await readdir(p.diskSnap)) {
    if (name !== high && name !== self) await rm(join(p.diskSnap, name), { recursive: true, force: true });
  }
  await writeAtomically(join(p.diskSnap, self), (tmp) => symlink('.', tmp));
  if (high === FIRST) return;
  const first = join(p.diskSnap, FIRST);
  await writeAtomically(first, (tmp) => link(entry, tmp));
  await relink(p.disk, await p.names.nameFor(first, { dir: dirname(p.disk) }));
  await rm(entry, { force: true });
}

/**
 * A persistent image used in place (shared mode): the disk is first linked to the prepared file
 * (beside SOURCE), which then becomes SOURCE by a hard link; the image's snap dir is rebuilt as
 * LinkImage lays it out (`0 -> SOURCE`, the self link; none for raw), the disk linked to it, and
 * the prepared file's own name dropped.
 */
async function placeImage(file: string, p: Placement): Promise<void> {
  const source = p.source as string;
  const imageSnap = p.imageSnap as string;
  const diskDir = dirname(p.disk);
  await relink(p.disk, await p.names.nameFor(file, { dir: diskDir }));
  p.committed();
  await writeAtomically(source, (tmp) => link(file, tmp));
  let target = source;
  if (p.format === 'qcow2') {
    await writeAtomically(imageSnap, async (tmp) => {
      await mkdir(tmp);
      await symlink(await p.names.nameFor(source, { dir: tmp }), join(tmp, FIRST));
      await symlink('.', join(tmp, basename(imageSnap)));
    });
    target = join(imageSnap, FIRST);
  } else {
    await rm(imageSnap, { recursive: true, force: true });
  }
  await relink(p.disk, await p.names.nameFor(target, { dir: diskDir }));
  await rm(file, { force: true });
  await rm(p.diskSnap, { recursive: true, force: true });
  // The image's checksum no longer describes it.
  await rm(`${source}.md5sum`, { force: true });
}
