import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { diskIdOf, dirname } from '../host-path.js';
import { CPDS_ARGS, MVDS_ARGS, MV_ARGS } from '../oned-signatures.js';
import { checkPath, requireExisting } from '../preflight.js';
import { saveDiskCopy } from '../save-disk-copy.js';
import { fetchVm } from '../vm-lookup.js';
import { copyFormat, diskFormat, snapDirFor } from '../disk-facts.js';
import { withMadeDirectories } from '../made-directories.js';

/**
 * mv in shared mode (docs/opennebula/tm-actions.md#mv): disk-level calls and moves between hosts at the same path
 * have nothing to do (one filesystem); a change of system datastore moves the directory on the
 * destination host. A repeat finds the source gone and the destination present: success.
 */
export const mvShared = defineAction(
  {
    signature: MV_ARGS,
    does: 'nothing on one filesystem; a change of system datastore moves the VM directory',
  },
  async (ctx, { source, destination }) => {
    if (diskIdOf(source.path) !== undefined || source.path === destination.path) return NO_OUTPUT;
    const st = await ctx.ops.call(destination.host, 'stat', { path: source.path, follow: false });
    if (!st.exists) {
      if ((await ctx.ops.call(destination.host, 'stat', { path: destination.path, follow: false })).exists)
        return NO_OUTPUT;
      throw new StorageError(
        'NOT_FOUND',
        `neither ${source.path} nor ${destination.path} exists on ${destination.host}`,
      );
    }
    // A copy that fails takes away the directories this call made for it.
    await withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: destination.host, path: dirname(destination.path) });
      await ctx.ops.call(destination.host, 'copy', {
        source: source.path,
        destination: destination.path,
        sparse: true,
      });
    });
    await ctx.ops.call(destination.host, 'delete', { path: source.path });
    return NO_OUTPUT;
  },
);

/** mvds in shared mode: the persistent image was used in place; nothing to copy back. */
export const mvdsShared = defineAction(
  { signature: MVDS_ARGS, does: 'nothing: the persistent image was used in place' },
  async () => NO_OUTPUT,
);

/**
 * cpds in shared mode: the host writes the new image straight into the image datastore it mounts,
 * from the disk or from one of its snapshots (in `<SOURCE>.snap` for a persistent image).
 */
export const cpdsShared = defineAction(
  {
    signature: CPDS_ARGS,
    does: 'writes the disk, or one of its snapshots, as a new image straight into the image datastore',
  },
  async (ctx, { disk, SOURCE: target, snapshot_id: snapId, vm_id: vmId }) => {
    const vm = await fetchVm(ctx, vmId);
    const d = vm.disk(disk.diskId);
    const format = copyFormat(d);
    const sourceFormat = diskFormat(d, `VM ${vmId} DISK ${disk.diskId}`);
    const snapDir = snapDirFor(ctx, d);
    // The disk and SOURCE are checked before SOURCE's directory is made (preflight.ts).
    await requireExisting(ctx, disk, 'disk');
    await checkPath(ctx, { host: disk.host, path: target });
    // A copy that fails takes away the directories this call made for SOURCE.
    await withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: disk.host, path: dirname(target) });
      await saveDiskCopy(ctx, disk, target, {
        format,
        sourceFormat,
        snapId,
        snapDir,
        vm: { info: vm, diskId: disk.diskId },
      });
    });
    return NO_OUTPUT;
  },
);
