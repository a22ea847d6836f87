import { StorageError } from '../../../common/src/errors.js';
import type { ChainLayer } from '../qemu/safe-chain.js';
import { entryPath } from '../snapshots/chain-safety.js';
import { type SnapDir, shownOf } from '../snapshots/snap-dir.js';

/**
 * Which file of the snap dir each overlay is built on, from every entry's own validated header:
 * id → the id of the entry its backing name leads to. An image's snapshots are built on each other
 * only, so a backing file that is not an entry of the snap dir (another image, a VM's disk) is
 * BAD_LAYOUT, and so is a loop; `baseId` (`.snap/0 -> SOURCE`) is left out: its chain is SOURCE's.
 * Knowing the whole graph from one header per file is what lets a layout of N snapshots be checked
 * with N reads instead of one per layer of every chain.
 */
export async function backingIds(
  what: string,
  snap: SnapDir,
  tops: ReadonlyMap<number, ChainLayer>,
  baseId?: number,
): Promise<Map<number, number>> {
  const byEntry = new Map<string, number>();
  for (const [id, file] of snap.files) byEntry.set(await entryPath(file), id);
  const backings = new Map<number, number>();
  for (const [id, top] of tops) {
    const backing = top.fullBackingFilename;
    if (backing === undefined || id === baseId) continue;
    const backingId = byEntry.get(await entryPath(backing).catch(() => ''));
    if (backingId === undefined) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${what}: ${shownOf(snap, id)} is backed by ${top.backingFilename}, not by a file of ${snap.short}`,
      );
    }
    backings.set(id, backingId);
  }
  for (const start of backings.keys()) {
    const seen = new Set<number>();
    for (let id: number | undefined = start; id !== undefined; id = backings.get(id)) {
      if (seen.has(id)) {
        throw new StorageError(
          'BAD_LAYOUT',
          `${what}: the backing chain of ${shownOf(snap, start)} refers to itself`,
        );
      }
      seen.add(id);
    }
  }
  return backings;
}

/** The ids of the files built directly on file `fileId`. */
export function childrenOf(backings: ReadonlyMap<number, number>, fileId: number): number[] {
  return [...backings].filter(([, b]) => b === fileId).map(([id]) => id);
}
