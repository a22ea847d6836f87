import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { dirname } from '../host-path.js';
import { CLONE_ARGS, MVDS_ARGS } from '../oned-signatures.js';
import { checkPath, requireExisting } from '../preflight.js';
import { enableLocalMonitoring } from '../tm-common/monitoring-marker.js';
import { vmDiskFormat } from '../vm-lookup.js';

/**
 * ln.grpc / ln.ssh (qcow2/shared's ln.ssh, docs/opennebula/snapshots.md#persistent-images-in-shared-mode): a persistent image of the shared image
 * datastore, used by a VM on a local system datastore, gets a local copy of its whole snapshot
 * chain (`<SOURCE>.snap/*` with symlinks dereferenced) in `disk.N.snap/`, backing names rewritten to
 * `disk.N.snap/K`, `disk.N` on the latest; the host mounts the image datastore, so its agent copies.
 */
export const lnMixed = defineAction(
  {
    signature: CLONE_ARGS,
    does: "copies a persistent image's whole snapshot chain to the host, backing names rebased",
  },
  async (ctx, { SOURCE: source, destination, vm_id: vmId }) => {
    const format = await vmDiskFormat(ctx, vmId, destination.path);
    // The agent makes the VM directory after its own checks of the chain; the datastore is marked for
    // monitoring once the disk is there (preflight.ts).
    await requireExisting(ctx, { host: destination.host, path: source.path }, 'image');
    await checkPath(ctx, destination);
    const r = await ctx.ops.call(destination.host, 'copyImageChain', {
      source: source.path,
      diskPath: destination.path,
      format,
    });
    await enableLocalMonitoring(ctx, { host: destination.host, path: dirname(dirname(destination.path)) });
    ctx.info(
      `${ctx.action}: local chain of ${source.path} on ${destination.host}, disk at snapshot file ${r.snapshotId}`,
    );
    return NO_OUTPUT;
  },
);

/**
 * mvds.grpc / mvds.ssh (qcow2/shared's mvds.ssh): the local chain goes back into `<SOURCE>.snap`,
 * backing names rewritten, and SOURCE becomes a link to its latest file; a plain disk is copied over
 * SOURCE. The host mounts the image datastore, so its agent does it in place.
 */
export const mvdsMixed = defineAction(
  {
    signature: MVDS_ARGS,
    does: 'saves the local chain back into `<SOURCE>.snap` and links SOURCE to its latest file',
  },
  async (ctx, { disk, SOURCE: source, vm_id: vmId }) => {
    const format = await vmDiskFormat(ctx, vmId, disk.path);
    await ctx.ops.call(disk.host, 'saveImageChain', { diskPath: disk.path, source, format });
    await ctx.ops.call(disk.host, 'delete', { path: `${source}.md5sum` });
    return NO_OUTPUT;
  },
);
