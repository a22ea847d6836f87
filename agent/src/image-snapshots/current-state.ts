import { lstat, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { storedNames } from '../paths/stored-name.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { AgentContext } from '../rpc/context.js';
import { fileOf } from '../snapshots/snap-dir.js';
import { readLayoutLinks, refuseCurrentOnActive } from './image-layout.js';

/**
 * The file that holds a persistent image's current state when it is not SOURCE: in the in-place
 * layout (`<SOURCE>.snap/0 -> SOURCE`, the qcow2/shared TM's; docs/image-datastore.md#snapshots-of-persistent-images)
 * SOURCE froze at the first snapshot and the active layer is the snap dir's highest file. Once
 * snapshot 0 is deleted the `0 -> SOURCE` link is gone (OpenNebula's snap_delete removes it too)
 * and SOURCE holds data no chain uses any more, while the VMs run on the highest file: the layout
 * is then told by the image's own self link `<SOURCE>.snap/<SOURCE name>.snap -> .`, which only
 * qcow2/shared `ln` lays out beside a SOURCE that stays a plain file (every other layout with it
 * makes SOURCE a link to its current file). `ln` links a new VM to that same highest file.
 * Undefined for every other layout (SOURCE, or the file it links to, is the current state). The snap dir's
 * entries are read and refused as the snapshot actions refuse them (BAD_LAYOUT), but no image
 * header is opened here: the caller validates the chain it then copies, once (chain-safety.ts).
 * @param source SOURCE's local entry (a final symlink not followed), already confined to the roots.
 */
export async function inPlaceActiveFile(
  agent: AgentContext,
  source: string,
  format: ImageFormat,
  what: string,
): Promise<string | undefined> {
  if (format !== 'qcow2') return undefined;
  const snapDir = `${source}.snap`;
  if ((await lstat(snapDir).catch(() => undefined)) === undefined) return undefined;
  const links = await readLayoutLinks({ source, snapDir, format, what, names: storedNames(agent.roots) });
  if (links.kind === 'none' || links.linkedId !== undefined || links.snap.files.size === 0) return undefined;
  if (!links.base && !(await hasImageSelfLink(snapDir, basename(source)))) return undefined;
  const activeId = Math.max(...links.snap.files.keys());
  refuseCurrentOnActive(what, links.snap, activeId);
  return fileOf(links.snap, activeId);
}

/** `<SOURCE>.snap/<SOURCE name>.snap -> .`: the self link qcow2/shared `ln` lays out. */
async function hasImageSelfLink(snapDir: string, sourceName: string): Promise<boolean> {
  const link = join(snapDir, `${sourceName}.snap`);
  const st = await lstat(link).catch(() => undefined);
  if (!st?.isSymbolicLink()) return false;
  return (await readlink(link)) === '.';
}
