import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../../common/src/log.js';
import { describe, renameBackingUnlocked } from '../qemu/qemu-img.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { backingNameOf, type SnapshotTarget } from '../snapshots/qcow2-snapshots.js';
import { readSnapDir } from '../snapshots/snap-dir.js';

/**
 * After a live pull with `--keep-relative`, gives the running disk's active layer the backing name
 * the agent writes itself (`disk.0.snap/0`, `../../1/<hash>.snap/0`) instead of libvirt's.
 * libvirt joins the relative names of every layer it pulled through (`disk.0.snap/` +
 * `disk.0.snap/0`), so each pull made the name one self-link longer: `disk.0.snap/disk.0.snap/0`,
 * resolving only through the self link, and growing with every delete.
 *
 * The image is open read-write in QEMU, so qemu-img cannot take its lock; the header is rewritten
 * past it (`file.locking=off`, `rebase -u`: no data read or copied). That is safe here because:
 *  - QEMU reads the backing name once, when it opens the image (libvirt gives it the chain as
 *    nodes anyway); it never re-reads the header while the image is open, and keeps its own copy
 *    of the name, which it writes back only when it rewrites the header itself (a later block job,
 *    bitmaps at close): libvirt's longer name then, which still leads to the same file;
 *  - QEMU writes the header only for operations that cannot run now: a block job or snapshot on
 *    the domain (the agent holds the domain's lock, and libvirt's job is over), a resize, or a
 *    change of persistent bitmaps. An image with persistent bitmaps (CBT backups) keeps libvirt's
 *    name: qemu-img would load those bitmaps, which QEMU owns while it runs, and store them back;
 *  - the new name is checked to lead to the very file the old one does before it is written, and
 *    the chain is read and checked again after.
 * Anything unexpected leaves libvirt's name (it resolves) and is logged; the delete stands.
 */
export async function shortenActiveBacking(
  t: SnapshotTarget,
  active: string,
  log: Logger,
): Promise<{ renamed: boolean }> {
  const opts = { what: t.what, ...(t.signal ? { signal: t.signal } : {}) };
  const info = await describe(active, 'qcow2', opts);
  const stored = info.backingFilename;
  const full = info.fullBackingFilename;
  if (stored === undefined || full === undefined) return { renamed: false };
  const base = await realpath(full);
  const snap = await readSnapDir(t.snapDir, t.what);
  let entry = base;
  for (const file of snap.files.values()) {
    if ((await realpath(file).catch(() => '')) === base) entry = file;
  }
  const wanted = await backingNameOf(t, snap, entry);
  if (wanted === stored) return { renamed: false };
  const from = t.style === 'bare' ? [dirname(active)] : [dirname(active), dirname(t.disk)];
  for (const dir of from) {
    const reached = await realpath(t.names.localOf(wanted, dir)).catch(() => '');
    if (reached !== base) {
      log.warn({ active, stored, wanted, dir }, 'the short backing name would not lead to the base: kept');
      return { renamed: false };
    }
  }
  if (info.bitmaps.length > 0) {
    log.info(
      { active, stored, bitmaps: info.bitmaps },
      'the active layer has persistent bitmaps: backing name kept',
    );
    return { renamed: false };
  }
  const format = info.backingFormat === 'raw' ? 'raw' : 'qcow2';
  try {
    await renameBackingUnlocked(active, { name: wanted, format }, opts);
  } catch (err) {
    log.warn(
      { active, stored, wanted, err: (err as Error).message },
      'the backing name could not be shortened: kept',
    );
    return { renamed: false };
  }
  try {
    await verifyChain(active, { ...opts, format: 'qcow2', scope: t.scope });
  } catch (err) {
    // Not expected (the name was checked to lead to the same file): put libvirt's name back.
    await renameBackingUnlocked(active, { name: stored, format }, opts);
    throw err;
  }
  log.info({ active, from: stored, to: wanted }, 'backing name of the running layer shortened');
  return { renamed: true };
}
