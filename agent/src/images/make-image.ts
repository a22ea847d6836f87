import { rm } from 'node:fs/promises';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import { MIB } from '../../../common/src/units.js';
import { FILESYSTEMS, type Filesystem } from '../../../common/src/images/filesystems.js';
import { IMAGE_FORMATS, convert, create } from '../qemu/qemu-img.js';

/** Formats mkimage accepts: the two image formats, and "swap" (a raw image holding swap space). */
export const MAKE_IMAGE_FORMATS = [...IMAGE_FORMATS, 'swap'] as const;
export type MakeImageFormat = (typeof MAKE_IMAGE_FORMATS)[number];

/**
 * Filesystems mkimage formats, with the flag that makes each mkfs write into a regular file
 * without asking (OpenNebula: `mkfs -F -t <fs>`, `mkfs.xfs -f`). mkfs.<fs> must be installed.
 */
export const FILESYSTEM_FORCE_FLAGS = {
  ext2: ['-F'],
  ext3: ['-F'],
  ext4: ['-F'],
  xfs: ['-f'],
  vfat: [],
} as const satisfies Record<Filesystem, readonly string[]>;
export { FILESYSTEMS, type Filesystem };

/** mkswap's label, as OpenNebula sets it (guests mount swap by LABEL=swap). */
export const SWAP_LABEL = 'swap';

export interface ImageSpec {
  sizeMb: number;
  format: MakeImageFormat;
  filesystem?: Filesystem;
  /** Extra mkfs arguments, already split and checked. */
  filesystemOptions: readonly string[];
  /** False allocates every block. */
  sparse: boolean;
  signal?: AbortSignal;
  what: string;
}

/**
 * Writes a new empty image at `dest` (a temporary the caller moves into place with writeAtomically): plain
 * `qemu-img create`, or a raw image formatted with mkfs/mkswap and then, for qcow2, converted.
 * Intermediate files sit beside `dest` and are removed however this ends.
 */
export async function makeImage(dest: string, spec: ImageSpec): Promise<void> {
  const opts = { what: spec.what, ...(spec.signal ? { signal: spec.signal } : {}) };
  const preallocate = !spec.sparse;
  if (spec.format === 'qcow2' && spec.filesystem === undefined) {
    await create(dest, { ...opts, format: 'qcow2', sizeMb: spec.sizeMb, preallocate });
    return;
  }
  // Everything else starts as a raw image: mkfs and mkswap write filesystems into plain files.
  const raw = spec.format === 'qcow2' ? tempNameBeside(dest) : dest;
  try {
    await create(raw, { ...opts, format: 'raw', sizeMb: spec.sizeMb, preallocate });
    if (spec.format === 'swap') {
      await runTool('mkswap', ['-L', SWAP_LABEL, raw], opts);
    } else if (spec.filesystem !== undefined) {
      const force = FILESYSTEM_FORCE_FLAGS[spec.filesystem];
      await runTool('mkfs', ['-t', spec.filesystem, ...force, ...spec.filesystemOptions, raw], opts);
    }
    // mkfs discards (punches holes in) a file it formats, undoing the preallocation.
    if (preallocate) await runTool('fallocate', ['-l', String(spec.sizeMb * MIB), raw], opts);
    if (raw !== dest) {
      await convert(raw, dest, { ...opts, sourceFormat: 'raw', format: 'qcow2', sparse: spec.sparse });
    }
  } finally {
    if (raw !== dest) await rm(raw, { force: true });
  }
}
