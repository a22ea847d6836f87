import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { replaceIntoPlace, writeAtomically } from '../../../common/src/files/atomic-file.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { StoredNames } from '../paths/stored-name.js';
import { relink } from '../snapshots/snap-dir.js';

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
}

/** The first (and, after a restore, only) snapshot file: `.snap/0`. */
const FIRST = '0';

/**
 * Puts the prepared file `file` (beside its destination) in place for `p.layout`. Each step
 * replaces by rename, so the old disk stays whole until the new file has its name; what the old
 * layout held beyond it (snapshots) is removed only afterwards.
 */
export async function placeDisk(file: string, p: Placement): Promise<void> {
  switch (p.layout) {
    case 'plain':
      // Local mode (OpenNebula's ssh restore): disk.N is the file; its snapshots go.
      await replaceIntoPlace(file, p.disk);
      await rm(p.diskSnap, { recursive: true, force: true });
      return;
    case 'snap-dir':
      // Shared mode, qcow2/restore's layout: disk.N -> disk.N.snap/0, the self link beside it.
      await writeAtomically(p.diskSnap, async (tmp) => {
        await mkdir(tmp);
        await rename(file, join(tmp, FIRST));
        await symlink('.', join(tmp, basename(p.diskSnap)));
      });
      await relink(p.disk, await p.names.nameFor(join(p.diskSnap, FIRST), { dir: dirname(p.disk) }));
      return;
    case 'image':
      await placeImage(file, p);
      return;
  }
}

/**
 * A persistent image used in place (shared mode): the image SOURCE is replaced, its snap dir
 * rebuilt as LinkImage lays it out (`0 -> SOURCE`, the self link), and disk.N linked to it.
 */
async function placeImage(file: string, p: Placement): Promise<void> {
  const source = p.source as string;
  const imageSnap = p.imageSnap as string;
  await replaceIntoPlace(file, source);
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
  await relink(p.disk, await p.names.nameFor(target, { dir: dirname(p.disk) }));
  await rm(p.diskSnap, { recursive: true, force: true });
  // The image's checksum no longer describes it.
  await rm(`${source}.md5sum`, { force: true });
}
