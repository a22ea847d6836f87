import { lstat } from 'node:fs/promises';
import { storedNames } from '../paths/stored-name.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { AgentContext } from '../rpc/context.js';
import { fileOf } from '../snapshots/snap-dir.js';
import { readImageLayout } from './image-layout.js';

/**
 * The file that holds a persistent image's current state when it is not SOURCE: in the in-place
 * layout (`<SOURCE>.snap/0 -> SOURCE`, the qcow2/shared TM's; docs/image-datastore.md#snapshots-of-persistent-images)
 * SOURCE froze at the first snapshot and the active layer is the snap dir's highest file. Undefined
 * for every other layout (SOURCE, or the file it links to, is the current state). The snap dir is
 * read and checked as the snapshot actions read it (BAD_LAYOUT for what is none of the layouts).
 * @param source SOURCE's local entry (a final symlink not followed), already confined to the roots.
 */
export async function inPlaceActiveFile(
  agent: AgentContext,
  source: string,
  format: ImageFormat,
  what: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  if (format !== 'qcow2') return undefined;
  const snapDir = `${source}.snap`;
  if ((await lstat(snapDir).catch(() => undefined)) === undefined) return undefined;
  const layout = await readImageLayout({
    source,
    snapDir,
    md5sum: `${source}.md5sum`,
    format,
    what,
    signal,
    scope: agent.roots,
    names: storedNames(agent.roots),
    copy: agent.copyLocal,
  });
  if (layout.kind !== 'chain' || layout.role !== 'base') return undefined;
  return fileOf(layout.snap, layout.activeId);
}
