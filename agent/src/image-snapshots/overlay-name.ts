import { isAbsolute } from 'node:path';
import { entryPath } from '../snapshots/chain-safety.js';
import { fileOf } from '../snapshots/snap-dir.js';
import type { ImageTarget, SnapLayout } from './image-layout.js';

/**
 * The backing name a new overlay in the snap dir stores for file `fileId`, written the way the
 * layout already names its files (docs/image-datastore.md#snapshots-of-persistent-images): an
 * existing overlay's name with its last component replaced, so an absolute name stays absolute
 * (qcow2/shared as OpenNebula writes it), a bare `K` stays bare (tm/local), `<hash>.snap/K`
 * (mvds.ssh), `disk.N.snap/K` or `../../1/<hash>.snap/K` (one-storage) keep their prefix and so
 * resolve from the same places as their siblings. The active layer's own name is tried first.
 * Without any usable overlay name, the agent's one naming rule (paths/stored-name.ts).
 */
export async function overlayBackingName(
  t: ImageTarget,
  layout: SnapLayout,
  fileId: number,
): Promise<string> {
  const wanted = await entryPath(fileOf(layout.snap, fileId));
  const ids = [...layout.tops.keys()].sort((a, b) => b - a);
  if (layout.kind === 'chain') ids.unshift(layout.activeId);
  for (const id of ids) {
    const name = layout.tops.get(id)?.backingFilename;
    if (name === undefined) continue;
    const candidate = `${name.slice(0, name.lastIndexOf('/') + 1)}${fileId}`;
    if ((await leadsTo(t, layout, candidate)) === wanted) return candidate;
  }
  return t.names.nameFor(fileOf(layout.snap, fileId), { dir: layout.snap.dir });
}

/**
 * The entry a backing name stored in a snap dir file leads to: relative names joined to the snap
 * dir as qemu joins them (the kernel then resolves `..` and self links), absolute names under
 * oned's location translated to this host.
 */
async function leadsTo(t: ImageTarget, layout: SnapLayout, name: string): Promise<string | undefined> {
  const local = isAbsolute(name) ? t.names.localOf(name, layout.snap.dir) : `${layout.snap.dir}/${name}`;
  return entryPath(local).catch(() => undefined);
}
