import { StorageError, oneLine } from '../../../common/src/errors.js';
import { parseVm, type VmInfo } from '../oned/vm-xml.js';
import type { ActionContext } from './action-context.js';

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
