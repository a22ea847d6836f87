import { StorageError, oneLine } from '../../../common/src/errors.js';
import { parseVm, type VmInfo } from '../oned/vm-xml.js';
import type { ActionContext } from './action-context.js';
import type { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { diskFormat } from './disk-facts.js';
import { diskIdOf } from './host-path.js';

/**
 * The VM as oned describes it now. oned being unreachable, the VM unknown to it, or its XML lacking
 * what the drivers read all become ONED_FAILED with oned's own words (never the session).
 */
export async function fetchVm(ctx: ActionContext, vmId: number): Promise<VmInfo> {
  let xml: string;
  try {
    xml = await ctx.oned.vmXml(vmId);
  } catch (err) {
    throw new StorageError('ONED_FAILED', oneLine(err instanceof Error ? err.message : String(err)), {
      cause: err,
    });
  }
  try {
    return parseVm(xml, vmId);
  } catch (err) {
    throw new StorageError(
      'ONED_FAILED',
      `oned: ${oneLine(err instanceof Error ? err.message : String(err))}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The format oned knows for the disk a `.../disk.N` path names (disk-facts.ts diskFormat), for an
 * action whose arguments carry the VM id but not the disk's attributes.
 */
export async function vmDiskFormat(ctx: ActionContext, vmId: number, diskPath: string): Promise<ImageFormat> {
  const diskId = diskIdOf(diskPath);
  const owner = `VM ${vmId} ${diskPath}`;
  if (diskId === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${owner}: the path does not name disk.N, so its format is unknown`,
    );
  }
  return diskFormat((await fetchVm(ctx, vmId)).disk(diskId), `VM ${vmId} DISK ${diskId}`);
}
