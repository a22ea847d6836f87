import { StorageError } from '../../../../common/src/errors.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { copyFormat, diskFormat } from '../disk-facts.js';
import { CPDS_ARGS } from '../oned-signatures.js';
import { checkPath, requireExisting } from '../preflight.js';
import { flattenTo } from './flatten-to.js';
import { CURRENT_STATE, saveDiskCopy } from '../save-disk-copy.js';
import { fetchVm } from '../vm-lookup.js';

/**
 * cpds of a VM's disk (docs/opennebula/tm-actions.md#cpds): the disk, or its snapshot snap_id, becomes a
 * new image at SOURCE on the front-end. The host flattens it (a qcow2 chain becomes one standalone
 * image) into a temporary file in the VM directory, which then moves to the front-end and is removed.
 * A repeat writes the same image again.
 */
export const cpdsLocal = defineAction(
  {
    signature: CPDS_ARGS,
    does: "saves the disk, or one of its snapshots, flattened, as a new image on the front-end (a running VM's disk by a block copy)",
  },
  async (ctx, { disk, SOURCE, snapshot_id: snapId, vm_id: vmId }) => {
    const image = { host: ctx.agents.frontend, path: SOURCE };
    if (snapId < CURRENT_STATE)
      throw new StorageError('INVALID_ARGUMENT', `argument snapshot_id ${snapId} is not -1 or a snapshot id`);
    await requireExisting(ctx, disk, 'disk');
    await checkPath(ctx, image);
    const vm = await fetchVm(ctx, vmId);
    const d = vm.disk(disk.diskId);
    const format = copyFormat(d);
    const sourceFormat = diskFormat(d, `VM ${vmId} DISK ${disk.diskId}`);
    await flattenTo(ctx, disk, image, (flat) =>
      saveDiskCopy(ctx, disk, flat, {
        format,
        sourceFormat,
        snapId,
        snapDir: '',
        vm: { info: vm, diskId: disk.diskId },
      }),
    );
    return NO_OUTPUT;
  },
);
