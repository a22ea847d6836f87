import { StorageError } from '../../../../common/src/errors.js';
import { diskFormat } from '../disk-facts.js';
import { fetchVm } from '../vm-lookup.js';
import { NO_OUTPUT } from '../action-context.js';
import { dirname } from '../host-path.js';
import { FileKind, kindOf, transfer } from '../transfer.js';
import { checkPath, requireExisting } from '../preflight.js';
import { enableLocalMonitoring } from '../tm-common/monitoring-marker.js';
import { withMadeDirectories } from '../made-directories.js';
import { defineAction } from '../define-action.js';
import { CLONE_ARGS } from '../oned-signatures.js';
import { diskNamedBy, growToDiskSize } from '../tm-common/grow-disk.js';
import { linkedSnapshotFile } from './linked-snapshot-file.js';

/**
 * clone and ln in local mode (OpenNebula's ssh TM, docs/opennebula/tm-actions.md#clone): both copy the image to the host
 * (LN_TARGET=SYSTEM), with its `.snap` directory when it has one (renamed disk.i.snap); create the
 * VM directory; grow the copy when the DISK's SIZE exceeds ORIGINAL_SIZE; SPARSE=no gives fully
 * allocated copies and preallocated growth; mark the system datastore for host-side monitoring once
 * the disk is there. A step that fails takes away what this call made: disk.i and disk.i.snap when
 * they were not there before, and the directories it created (no marker was written yet). A repeat
 * copies again over the previous result: the same outcome.
 */
export const cloneLocal = defineAction(
  {
    signature: CLONE_ARGS,
    does: 'copies the image (with its `.snap` directory) to the host, grown to SIZE, fully allocated with SPARSE=no',
  },
  async (ctx, { SOURCE: source, destination, vm_id: vmId }) => {
    const vm = await fetchVm(ctx, vmId);
    const disk = diskNamedBy(vm, destination.path);
    const sparse = disk?.sparse !== false;

    // Every path is checked before the VM directory is made (preflight.ts).
    await requireExisting(ctx, source, 'image');
    // The link itself too: SOURCE -> <hash>.snap/N is OpenNebula's local mvds layout.
    const st = await ctx.ops.call(source.host, 'stat', { path: source.path, follow: false });
    const snapDir = { host: source.host, path: `${source.path}.snap` };
    const hasSnapDir = (await kindOf(ctx, snapDir)) === FileKind.FILE_KIND_DIRECTORY;
    const active = linkedSnapshotFile(source.path, st);
    // OpenNebula's local mvds leaves SOURCE -> <hash>.snap/N: the disk is file N of the copied snap
    // dir (local/clone relinks disk.N to disk.N.snap/<basename>); copying the link would dangle.
    if (active !== undefined && !hasSnapDir) {
      throw new StorageError(
        'NOT_FOUND',
        `image ${source.host}:${source.path} links to ${st.linkTarget}, but ${snapDir.path} does not exist`,
      );
    }
    // The snapshot files are read as the disk's format, which oned knows (never probed).
    const relinkFormat =
      active === undefined ? undefined : diskFormat(disk, `VM ${vmId} ${destination.path}`);
    const destinationWas = await checkPath(ctx, destination);
    const snapCopy = { host: destination.host, path: `${destination.path}.snap` };
    const snapCopyWas = hasSnapDir ? await checkPath(ctx, snapCopy) : undefined;

    const vmDir = dirname(destination.path);
    await withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host: destination.host, path: vmDir });
      // What was not there before this call is this call's to take away again if it fails.
      if (hasSnapDir && snapCopyWas === undefined) dirs.writes(snapCopy);
      if (destinationWas === undefined) dirs.writes(destination);
      if (hasSnapDir) await transfer(ctx, snapDir, snapCopy, { sparse });
      if (active === undefined || relinkFormat === undefined) {
        await transfer(ctx, source, destination, { sparse });
      } else {
        await ctx.ops.call(destination.host, 'relinkDisk', {
          diskPath: destination.path,
          active,
          format: relinkFormat,
        });
      }
      await growToDiskSize(ctx, destination, disk, () => diskFormat(disk, `VM ${vmId} ${destination.path}`));
    });
    await enableLocalMonitoring(ctx, { host: destination.host, path: dirname(vmDir) });
    return NO_OUTPUT;
  },
);
