import { StorageError } from '../../../../common/src/errors.js';
import { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { formatHostPath } from '../host-path.js';
import { MVDS_ARGS } from '../oned-signatures.js';
import { FileKind, kindOf, transfer } from '../transfer.js';
import { CURRENT_STATE, saveDiskCopy } from '../save-disk-copy.js';
import { checkPath } from '../preflight.js';
import { vmDiskFormat } from '../vm-lookup.js';
import { flattenTo } from './flatten-to.js';

/**
 * mvds in local mode (docs/opennebula/tm-actions.md#mvds): a persistent disk goes back to its image SOURCE on the
 * front-end (SOURCE has no host part), its snapshots to SOURCE.snap (replacing what was there,
 * like rsync --delete), and the image's cached checksum SOURCE.md5sum is dropped. The image is
 * replaced atomically, only after the copy is verified. A disk that is a qcow2 snapshot chain is
 * flattened first. A repeat copies the same disk again.
 */
export const mvdsLocal = defineAction(
  {
    signature: MVDS_ARGS,
    does: 'copies a persistent disk back to its image on the front-end (a snapshot chain flattened), its snapshots to `<SOURCE>.snap`',
  },
  async (ctx, { disk, SOURCE, vm_id: vmId }) => {
    const image = { host: ctx.agents.frontend, path: SOURCE };
    const kind = await kindOf(ctx, disk);
    // SOURCE is checked before anything is copied towards it (preflight.ts).
    await checkPath(ctx, image);
    if (kind === undefined)
      throw new StorageError('NOT_FOUND', `disk ${formatHostPath(disk)} does not exist`);
    if (kind !== FileKind.FILE_KIND_FILE && kind !== FileKind.FILE_KIND_SYMLINK) {
      throw new StorageError('INVALID_ARGUMENT', `disk ${formatHostPath(disk)} is not an image file`);
    }
    const snapDir = { host: disk.host, path: `${disk.path}.snap` };
    if ((await kindOf(ctx, snapDir)) === FileKind.FILE_KIND_DIRECTORY) {
      // The snapshot files keep their `disk.N.snap/K` backing names: the self link travels with them,
      // so the chain still resolves inside SOURCE.snap.
      await transfer(ctx, snapDir, { host: image.host, path: `${image.path}.snap` }, { sparse: true });
    }
    if (kind === FileKind.FILE_KIND_FILE) {
      await transfer(ctx, disk, image, { sparse: true });
    } else {
      // disk.N → disk.N.snap/K: a qcow2 snapshot chain. The image gets its current state as one
      // standalone file (ssh/mvds flattens the same way), made on the host beside the disk.
      const sourceFormat = await vmDiskFormat(ctx, vmId, disk.path);
      await flattenTo(ctx, disk, image, (flat) =>
        saveDiskCopy(ctx, disk, flat, {
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          sourceFormat,
          snapId: CURRENT_STATE,
          snapDir: '',
        }),
      );
    }
    await ctx.ops.call(image.host, 'delete', { path: `${image.path}.md5sum` });
    return NO_OUTPUT;
  },
);
