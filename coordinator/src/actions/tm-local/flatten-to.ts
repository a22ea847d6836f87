import type { ActionContext } from '../action-context.js';
import { basename, dirname, type HostPath } from '../host-path.js';
import { transfer } from '../transfer.js';

/**
 * Saves a disk (or one of its snapshots) as one standalone image at `image`: `write` makes the flat
 * copy (save-disk-copy.ts: qemu-img convert, or a block copy of a running VM's disk) into a
 * temporary file beside the disk, the file moves to the image's host, and the temporary is removed
 * whatever happens.
 */
export async function flattenTo(
  ctx: ActionContext,
  disk: HostPath,
  image: HostPath,
  write: (flatPath: string) => Promise<void>,
): Promise<void> {
  const flat = {
    host: disk.host,
    path: `${dirname(disk.path)}/.${ctx.action.split('.')[0] ?? 'flat'}.${basename(disk.path)}.${ctx.requestId.slice(0, 8)}`,
  };
  try {
    await write(flat.path);
    await transfer(ctx, flat, image, { sparse: true });
  } finally {
    await ctx.ops.call(disk.host, 'delete', { path: flat.path });
  }
}
