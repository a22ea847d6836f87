import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { basename } from '../host-path.js';
import { CLONE_ARGS } from '../oned-signatures.js';
import { diskNamedBy, growToDiskSize } from '../tm-common/grow-disk.js';
import { checkPath, requireExisting } from '../preflight.js';
import { diskFormat } from '../disk-facts.js';
import { fetchVm, vmDiskFormat } from '../vm-lookup.js';

/**
 * clone in shared mode (qcow2/shared, docs/opennebula/tm-actions.md#clone): the image and system datastores are one
 * filesystem the host mounts, so the host's agent does everything in place: a qcow2 image gets an
 * overlay (`disk.N → disk.N.snap/0`, backing on the image), a full copy with QCOW2_STANDALONE, a raw
 * image a plain copy; the disk grows when SIZE exceeds ORIGINAL_SIZE. Nothing crosses the network.
 */
export const cloneShared = defineAction(
  {
    signature: CLONE_ARGS,
    does: 'makes the disk in place on the shared filesystem: a qcow2 overlay on the image, a full copy with QCOW2_STANDALONE, a raw copy; grown to SIZE',
  },
  async (ctx, { SOURCE: source, destination, vm_id: vmId }) => {
    const vm = await fetchVm(ctx, vmId);
    const disk = diskNamedBy(vm, destination.path);
    const sparse = disk?.sparse !== false;
    const format = diskFormat(disk, `VM ${vmId} ${destination.path}`);
    // The host reads the image through its own mount. The agent makes the VM directory itself, after
    // its own checks of the image (preflight.ts).
    await requireExisting(ctx, { host: destination.host, path: source.path }, 'image');
    await checkPath(ctx, destination);
    const r = await ctx.ops.call(destination.host, 'cloneOverlay', {
      source: source.path,
      diskPath: destination.path,
      standalone: disk?.qcow2Standalone === true,
      sparse,
      format,
    });
    await growToDiskSize(ctx, destination, disk, () => format);
    ctx.info(`${ctx.action}: ${r.format} ${basename(destination.path)} made in place on ${destination.host}`);
    return NO_OUTPUT;
  },
);

/**
 * ln in shared mode: a persistent image is used in place; its snapshots live in `<SOURCE>.snap` and
 * `disk.N` links to the latest one (docs/opennebula/snapshots.md#qcow2-layout).
 */
export const lnShared = defineAction(
  {
    signature: CLONE_ARGS,
    does: 'uses a persistent image in place: `disk.N` links to it, its snapshots stay in `<SOURCE>.snap`',
  },
  async (ctx, { SOURCE: source, destination, vm_id: vmId }) => {
    const format = await vmDiskFormat(ctx, vmId, destination.path);
    await requireExisting(ctx, { host: destination.host, path: source.path }, 'image');
    await checkPath(ctx, destination);
    await ctx.ops.call(destination.host, 'linkImage', {
      source: source.path,
      diskPath: destination.path,
      format,
    });
    return NO_OUTPUT;
  },
);
