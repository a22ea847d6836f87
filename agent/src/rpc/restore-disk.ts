import { rm } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import {
  RestoreLayout as WireLayout,
  type RestoreDiskRequest,
  type RestoreDiskResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { storedNames } from '../paths/stored-name.js';
import { type RestoreLayout, placeDisk } from '../restore/place-disk.js';
import { refuseIfInUse } from '../restore/disk-in-use.js';
import { prepareRestoredFile } from '../restore/restored-file.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { enumName, requirePath } from './validate.js';

const METHOD = 'RestoreDisk';
const LAYOUTS: ReadonlyMap<WireLayout, RestoreLayout> = new Map([
  [WireLayout.RESTORE_LAYOUT_PLAIN, 'plain'],
  [WireLayout.RESTORE_LAYOUT_SNAP_DIR, 'snap-dir'],
  [WireLayout.RESTORE_LAYOUT_IMAGE, 'image'],
]);

/**
 * TM restore's last step on the VM's host (docs/backups.md#tm-restore): the received restore point
 * `staging` becomes the disk, in the layout of the VM's TM driver. The staging file never survives
 * the call: it is the disk afterwards, or removed with every temporary when anything fails, the
 * old disk then left as it was.
 */
export async function restoreDisk(
  agent: AgentContext,
  req: RestoreDiskRequest,
  call: CallContext,
): Promise<RestoreDiskResponse> {
  const staging = requirePath(agent, METHOD, 'staging', req.staging);
  const diskPath = requirePath(agent, METHOD, 'disk_path', req.diskPath);
  const format = formatName(agent, METHOD, 'format', req.format);
  const layout = enumName(agent, METHOD, 'layout', req.layout, LAYOUTS);
  const what = `restore ${where(agent, diskPath)}`;
  const source = layout === 'image' ? requirePath(agent, METHOD, 'source', req.source) : undefined;
  const taken = [diskPath, `${diskPath}.snap`, ...(source ? [source, `${source}.snap`] : [])];
  if (taken.includes(staging)) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: staging ${staging} is a path the restore replaces`);
  }
  const localStaging = await agent.roots.resolve(staging, 'staging');
  const disk = await agent.roots.resolve(diskPath, 'disk_path');
  const diskSnap = await agent.roots.resolve(`${diskPath}.snap`, 'disk_path');
  const image =
    source === undefined
      ? {}
      : {
          source: await agent.roots.resolve(source, 'source'),
          imageSnap: await agent.roots.resolve(`${source}.snap`, 'source'),
        };
  const locked = [localStaging, disk, diskSnap, ...Object.values(image)];
  return agent.locks.withLock(
    locked,
    what,
    async () => {
      const started = performance.now();
      let file = localStaging;
      let committed = false;
      try {
        // What the VM opens: the disk, or for a persistent image used in place, the image.
        await refuseIfInUse(image.source ?? disk, format, { what, signal: call.signal });
        const ready = await prepareRestoredFile(localStaging, format, {
          what,
          shown: staging,
          signal: call.signal,
          progress: call.progress,
        });
        file = ready.file;
        await placeDisk(file, {
          layout,
          format,
          disk,
          diskSnap,
          ...image,
          names: storedNames(agent.roots),
          committed: () => (committed = true),
        });
        call.log.info(
          {
            disk: diskPath,
            layout,
            format,
            bitmaps: ready.bitmapsRemoved,
            ms: Math.round(performance.now() - started),
          },
          'restored',
        );
        return { virtualSize: ready.virtualSize, bitmapsRemoved: ready.bitmapsRemoved };
      } catch (err) {
        // Once the disk leads to the restored file, it stays: a retry finishes the layout.
        if (!committed) {
          await rm(file, { recursive: true, force: true });
          await rm(localStaging, { force: true });
        }
        throw asStorageError(err, 'restore', where(agent, diskPath));
      }
    },
    call.signal,
  );
}
