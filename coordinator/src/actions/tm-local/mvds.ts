import { StorageError } from '../../../../common/src/errors.js';
import { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { NO_OUTPUT } from '../action-context.js';
import { defineAction } from '../define-action.js';
import { basename, formatHostPath, type HostPath } from '../host-path.js';
import { MVDS_ARGS } from '../oned-signatures.js';
import { FileKind, kindOf, transfer } from '../transfer.js';
import { CURRENT_STATE, saveDiskCopy } from '../save-disk-copy.js';
import { checkPath } from '../preflight.js';
import { vmDiskFormat } from '../vm-lookup.js';
import { flattenTo } from './flatten-to.js';
import { linkedSnapshotFile } from './linked-snapshot-file.js';

/**
 * mvds in local mode (docs/opennebula/tm-actions.md#mvds): a persistent disk goes back to its image SOURCE on the
 * front-end (SOURCE has no host part), its snapshots to SOURCE.snap (replacing what was there,
 * like rsync --delete), and the image's cached checksum SOURCE.md5sum is dropped. A plain disk file
 * replaces SOURCE atomically, only after the copy is verified. A disk that is a qcow2 snapshot chain
 * (`disk.N -> disk.N.snap/K`) leaves OpenNebula's tm/local layout: `SOURCE -> <hash>.snap/K`, so
 * the next clone/ln runs the disk on file K again and oned's next snapshot id K finds no file K in
 * the way (docs/image-datastore.md#layouts). Any other chain is flattened into SOURCE (as ssh/mvds
 * does). A repeat copies the same disk again.
 */
export const mvdsLocal = defineAction(
  {
    signature: MVDS_ARGS,
    does: 'copies a persistent disk back to its image on the front-end, its snapshots to `<SOURCE>.snap` (a snapshot chain: SOURCE links to its active file there)',
  },
  async (ctx, { disk, SOURCE, vm_id: vmId }) => {
    const image = { host: ctx.agents.frontend, path: SOURCE };
    // One stat (the link itself): its kind here, its target for the chain's top below.
    const st = await ctx.ops.call(disk.host, 'stat', { path: disk.path, follow: false });
    const kind = st.exists ? st.kind : undefined;
    // SOURCE is checked before anything is copied towards it (preflight.ts).
    await checkPath(ctx, image);
    if (kind === undefined)
      throw new StorageError('NOT_FOUND', `disk ${formatHostPath(disk)} does not exist`);
    if (kind !== FileKind.FILE_KIND_FILE && kind !== FileKind.FILE_KIND_SYMLINK) {
      throw new StorageError('INVALID_ARGUMENT', `disk ${formatHostPath(disk)} is not an image file`);
    }
    const snapDir = { host: disk.host, path: `${disk.path}.snap` };
    const hasSnapDir = (await kindOf(ctx, snapDir)) === FileKind.FILE_KIND_DIRECTORY;
    if (hasSnapDir) {
      // The copy keeps the `disk.N.snap/K` backing names and the self link that resolves them.
      await transfer(ctx, snapDir, { host: image.host, path: `${image.path}.snap` }, { sparse: true });
    }
    if (kind === FileKind.FILE_KIND_FILE) {
      await transfer(ctx, disk, image, { sparse: true });
    } else {
      const sourceFormat = await vmDiskFormat(ctx, vmId, disk.path);
      const active = hasSnapDir ? chainTop(disk, st, sourceFormat) : undefined;
      if (active !== undefined) {
        // The copied files' backing names (`disk.N.snap/K`) become `<hash>.snap/K` through the
        // image snap dir's own self link, and SOURCE is relinked to file K last (RelinkDisk); the
        // VM's self link that came with the copy then goes (Delete removes a link, not its target).
        await ctx.ops.call(image.host, 'relinkDisk', { diskPath: image.path, active, format: sourceFormat });
        const vmSelfLink = `${basename(disk.path)}.snap`;
        if (vmSelfLink !== `${basename(image.path)}.snap`) {
          await ctx.ops.call(image.host, 'delete', { path: `${image.path}.snap/${vmSelfLink}` });
        }
      } else {
        // Any other chain: the image gets its current state as one standalone file (ssh/mvds
        // flattens the same way), made on the host beside the disk.
        await flattenTo(ctx, disk, image, (flat) =>
          saveDiskCopy(ctx, disk, flat, {
            format: ImageFormat.IMAGE_FORMAT_QCOW2,
            sourceFormat,
            snapId: CURRENT_STATE,
            snapDir: '',
          }),
        );
      }
    }
    await ctx.ops.call(image.host, 'delete', { path: `${image.path}.md5sum` });
    return NO_OUTPUT;
  },
);

/**
 * K when the disk is a qcow2 chain whose active layer is a numbered file of its own snap dir
 * (`disk.N -> disk.N.snap/K`, the snapshot layout, docs/opennebula/snapshots.md#qcow2-layout).
 */
function chainTop(
  disk: HostPath,
  st: { kind: FileKind; linkTarget: string },
  format: ImageFormat,
): string | undefined {
  if (format !== ImageFormat.IMAGE_FORMAT_QCOW2) return undefined;
  const name = linkedSnapshotFile(disk.path, st);
  return name !== undefined && /^[0-9]+$/.test(name) ? name : undefined;
}
