import { lstat, mkdir, readlink, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ImageFormat, convert, create } from '../qemu/qemu-img.js';
import type { ChainScope } from '../qemu/layer-places.js';
import { readChain } from '../qemu/safe-chain.js';
import { replaceIntoPlace, siblingTempPath } from '../transfer/replace-into-place.js';
import { verifyChain } from './chain-safety.js';
import { relink } from './snap-dir.js';

/** The first file of a clone's snap dir: qcow2/shared's `disk.N.snap/0`. */
const BASE_FILE = '0';

/** A qcow2/shared clone target, as local paths the handler has resolved and confined. */
export interface CloneTarget {
  /** `<vmdir>/disk.N` (a symlink is not followed). */
  readonly disk: string;
  /** `<vmdir>/disk.N.snap`. */
  readonly snapDir: string;
  /** The image, as this host names it: also the backing name an overlay stores. */
  readonly source: string;
  readonly sourceFormat: ImageFormat;
  readonly what: string;
  readonly signal?: AbortSignal;
  /** The agent's roots: every chain is validated against them (safe-chain.ts). */
  readonly scope: ChainScope;
}

/** `disk.N.snap/0`: the text of the disk link and of the base file's path relative to the VM dir. */
export function baseLinkText(t: CloneTarget): string {
  return `${basename(t.snapDir)}/${BASE_FILE}`;
}

/**
 * True when the disk already is the overlay layout on this source: `disk.N -> disk.N.snap/0`, the
 * self link, and `.snap/0` a qcow2 whose stored backing name and format are the source's. A retried
 * clone then keeps the overlay, which may already hold guest writes.
 */
export async function isOverlayOn(t: CloneTarget): Promise<boolean> {
  const linkText = await readlink(t.disk).catch(() => undefined);
  if (linkText !== baseLinkText(t)) return false;
  const dir = await lstat(t.snapDir).catch(() => undefined);
  if (!dir?.isDirectory()) return false;
  const self = await readlink(join(t.snapDir, basename(t.snapDir))).catch(() => undefined);
  if (self !== '.') return false;
  const [layer] = await readChain(join(t.snapDir, BASE_FILE), 'qcow2', {
    ...opts(t),
    scope: t.scope,
    chain: false,
  }).catch(() => []);
  return (
    layer?.format === 'qcow2' && layer.backingFilename === t.source && layer.backingFormat === t.sourceFormat
  );
}

/**
 * Builds `disk.N.snap/` (self link, `0` an overlay on the source or a standalone qcow2 copy of it)
 * under a temporary name beside it, renames it into place (replacing an old one), then points the
 * disk at `disk.N.snap/0` by an atomic relink. Nothing half-made is left on failure.
 */
export async function buildCloneLayout(
  t: CloneTarget,
  how: { standalone: boolean; sparse: boolean },
): Promise<void> {
  await mkdir(dirname(t.disk), { recursive: true });
  const temp = siblingTempPath(t.snapDir);
  try {
    await mkdir(temp);
    await symlink('.', join(temp, basename(t.snapDir)));
    const base = join(temp, BASE_FILE);
    if (how.standalone) {
      await convert(t.source, base, {
        ...opts(t),
        sourceFormat: t.sourceFormat,
        format: 'qcow2',
        sparse: how.sparse,
      });
    } else {
      await create(base, { ...opts(t), format: 'qcow2', backing: t.source, backingFormat: t.sourceFormat });
    }
    await replaceIntoPlace(temp, t.snapDir);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  await relink(t.disk, baseLinkText(t));
  await verifyChain(t.disk, { ...opts(t), format: 'qcow2', scope: t.scope });
}

function opts(t: CloneTarget): { what: string; signal?: AbortSignal } {
  return { what: t.what, ...(t.signal ? { signal: t.signal } : {}) };
}
