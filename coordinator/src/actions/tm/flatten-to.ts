import type { LiveDisk } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ActionContext } from '../action-context.js';
import { basename, dirname, type HostPath } from '../host-path.js';
import { transfer } from '../transfer.js';

/**
 * Saves a disk (or one of its snapshots) as one standalone image at `image`: the disk's host
 * flattens it with qemu-img convert (a running VM's disk: a libvirt block copy, `live`) into a temporary file beside the disk (a qcow2 chain becomes
 * one file), the file moves to the image's host, and the temporary is removed whatever happens.
 */
export async function flattenTo(
  ctx: ActionContext,
  disk: HostPath,
  image: HostPath,
  opts: { format: 'raw' | 'qcow2'; snapId?: number; live?: LiveDisk },
): Promise<void> {
  const flat = {
    host: disk.host,
    path: `${dirname(disk.path)}/.${ctx.action.split('.')[0] ?? 'flat'}.${basename(disk.path)}.${ctx.requestId.slice(0, 8)}`,
  };
  try {
    if (opts.live) {
      await ctx.ops.call(disk.host, 'delete', { path: flat.path });
      await ctx.ops.call(disk.host, 'copyDiskLive', {
        diskPath: disk.path,
        destination: flat.path,
        format: opts.format,
        live: opts.live,
      });
    } else {
      await ctx.ops.call(disk.host, 'convert', {
        source: disk.path,
        destination: flat.path,
        format: opts.format,
        sparse: true,
        snapshot: opts.snapId === undefined ? undefined : { snapDir: '', snapId: opts.snapId },
      });
    }
    await transfer(ctx, flat, image, { sparse: true });
  } finally {
    await ctx.ops.call(disk.host, 'delete', { path: flat.path });
  }
}
