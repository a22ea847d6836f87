import { StorageError } from '../../../../common/src/errors.js';
import { chainFiles, formatChain, parseBackupUrl } from '../../../../common/src/backups/backup-url.js';
import { DS_DRIVER_BACKUP } from '../../../../common/src/drivers/driver-actions.js';
import { MIB } from '../../../../common/src/units.js';
import { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ActionContext } from '../action-context.js';
import { backupServerOf } from '../ds-backup/backup-server.js';
import { cleanPath, dirname } from '../host-path.js';
import { withMadeDirectories } from '../made-directories.js';
import type { ImageActionData } from './image-action-data.js';
import { aboutImage, basePathOf, imageHost } from './image-call.js';
import { imageSourceName } from './image-source-name.js';

/**
 * Image datastore `cp` of a `grpc_backup://` PATH (docs/backups.md#pseudo-urls): the restore point
 * the URL names is merged on the backup datastore's server (OpenBackupChain: every file checked
 * against its SHA256SUMS, every layer pinned) and pulled by the host the image lands on through
 * ImportImage (SHA-256 end to end, written under a temporary name, renamed into SOURCE). The image
 * is a standalone qcow2, and only that is accepted. Prints `<SOURCE> qcow2`.
 */
export async function cpFromBackup(
  ctx: ActionContext,
  data: ImageActionData,
  id: number,
  path: string,
): Promise<{ stdout: string }> {
  const url = parseBackupUrl(path, `${data.owner}: PATH`);
  const server = await aboutImage(data.owner, () => backupServerOf(ctx, url.dsId, DS_DRIVER_BACKUP));
  const files = chainFiles(url);
  // Every file must be `<BASE_PATH>/<vmid>/<bid>/disk.<d>.<inc>` of that datastore.
  for (const f of files) {
    if (dirname(dirname(dirname(cleanPath(f)))) !== server.basePath)
      throw new StorageError(
        'UNSAFE_PATH',
        `${data.owner}: PATH names ${f}, which is not in BASE_PATH ${server.basePath} of backup datastore ${url.dsId}`,
      );
  }
  const source = imageSourceName(basePathOf(data), id, Date.now(), data.owner);
  const host = await imageHost(ctx, data, id);
  ctx.info(
    `Restoring backup ${formatChain(url.chain)} of VM ${url.vmId} disk ${url.diskId} from ${server.host} to the image repository`,
  );
  const started = performance.now();
  const r = await aboutImage(data.owner, () =>
    withMadeDirectories(ctx, async (dirs) => {
      await dirs.make({ host, path: dirname(source) });
      const offer = await ctx.ops.call(server.host, 'openBackupChain', {
        chain: files,
        receiverName: ctx.agents.get(host).agent.certName,
        ttlSeconds: 0,
      });
      const imported = await ctx.ops.call(host, 'importImage', {
        destination: source,
        remote: {
          ticket: offer.ticket,
          dataAddress: offer.dataAddress,
          sourceName: ctx.agents.get(server.host).agent.certName,
        },
        md5: '',
        sha1: '',
        noDecompress: true,
        limitBytesPerSecond: data.datastore.limitBytesPerSecond,
        convertTo: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        sparse: data.datastore.sparse,
        plainFile: false,
        label: data.owner,
      });
      if (imported.format !== ImageFormat.IMAGE_FORMAT_QCOW2) {
        await ctx.ops.callDetached(host, 'delete', { path: source });
        throw new StorageError('BAD_IMAGE', `the restored image at ${host}:${source} is not qcow2; removed`);
      }
      return imported;
    }),
  );
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  ctx.info(
    `cp: image ${id} restored at ${host}:${source} as qcow2: ${(r.fetchedBytes / MIB).toFixed(1)} MiB fetched in ${seconds.toFixed(2)} s`,
  );
  return { stdout: `${source} qcow2\n` };
}
