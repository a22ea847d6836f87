import { lstat, readlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { NameAnchor, StoredNames } from '../paths/stored-name.js';
import { type ImageFormat, convert, create } from '../qemu/qemu-img.js';
import type { ChainScope } from '../qemu/layer-places.js';
import { readChain } from '../qemu/safe-chain.js';
import { buildSnapDir } from './build-snap-dir.js';
import { entryPath, verifyChain } from './chain-safety.js';
import { relink } from './snap-dir.js';
import { makeDirectory } from '../files/make-directory.js';

/** The first file of a clone's snap dir: qcow2/shared's `disk.N.snap/0`. */
const BASE_FILE = '0';

/** A qcow2/shared clone target, as local paths the handler has resolved and confined. */
export interface CloneTarget {
  /** `<vmdir>/disk.N` (a symlink is not followed). */
  readonly disk: string;
  /** `<vmdir>/disk.N.snap`. */
  readonly snapDir: string;
  /** The image, as this host names it (the overlay stores its name by `names`). */
  readonly source: string;
  readonly sourceFormat: ImageFormat;
  readonly what: string;
  readonly signal?: AbortSignal;
  /** The agent's roots: every chain is validated against them (safe-chain.ts). */
  readonly scope: ChainScope;
  /** The naming rule for the disk link and the overlay's backing name (paths/stored-name.ts). */
  readonly names: StoredNames;
}

/** `disk.N.snap/0`, the base file: what the disk links to. */
function baseFile(t: CloneTarget): string {
  return join(t.snapDir, BASE_FILE);
}

/**
 * The overlay's backing names are seen from the snap dir through its self link, so they resolve
 * when `.snap/0` is opened through disk.N (from the VM directory) and through a later snapshot's
 * name (from the snap dir): `disk.0.snap/../../../1/<image>`.
 */
function overlayAnchor(t: CloneTarget): NameAnchor {
  return { dir: t.snapDir, selfLink: basename(t.snapDir) };
}

/**
 * True when the disk already is the overlay layout on this source: `disk.N -> disk.N.snap/0`, the
 * self link, and `.snap/0` a qcow2 backed by the source's entry in the source's format (whatever
 * name an earlier version stored for it). A retried clone then keeps the overlay, which may
 * already hold guest writes.
 */
export async function isOverlayOn(t: CloneTarget): Promise<boolean> {
  const linkText = await readlink(t.disk).catch(() => undefined);
  if (linkText === undefined) return false;
  const linked = await entryPath(t.names.localOf(linkText, dirname(t.disk))).catch(() => undefined);
  if (linked === undefined || linked !== (await entryPath(baseFile(t)).catch(() => undefined))) return false;
  const dir = await lstat(t.snapDir).catch(() => undefined);
  if (!dir?.isDirectory()) return false;
  const self = await readlink(join(t.snapDir, basename(t.snapDir))).catch(() => undefined);
  if (self !== '.') return false;
  const [layer] = await readChain(join(t.snapDir, BASE_FILE), 'qcow2', {
    ...opts(t),
    scope: t.scope,
    chain: false,
  }).catch(() => []);
  if (layer?.format !== 'qcow2' || layer.backingFormat !== t.sourceFormat) return false;
  if (layer.fullBackingFilename === undefined) return false;
  const backing = await entryPath(layer.fullBackingFilename).catch(() => undefined);
  return backing !== undefined && backing === (await entryPath(t.source));
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
  await makeDirectory(dirname(t.disk));
  await buildSnapDir(t.snapDir, basename(t.snapDir), async (temp) => {
    const base = join(temp, BASE_FILE);
    if (how.standalone) {
      await convert(t.source, base, {
        ...opts(t),
        sourceFormat: t.sourceFormat,
        format: 'qcow2',
        sparse: how.sparse,
      });
    } else {
      const name = await t.names.nameFor(t.source, overlayAnchor(t));
      await create(base, { ...opts(t), format: 'qcow2', backing: { name, format: t.sourceFormat } });
    }
  });
  await relink(t.disk, await t.names.nameFor(baseFile(t), { dir: dirname(t.disk) }));
  await verifyChain(t.disk, { ...opts(t), format: 'qcow2', scope: t.scope });
}

function opts(t: CloneTarget): { what: string; signal?: AbortSignal } {
  return { what: t.what, ...(t.signal ? { signal: t.signal } : {}) };
}
