import { StorageError } from '../../../../common/src/errors.js';
import { defineAction } from '../define-action.js';
import { cleanPath } from '../host-path.js';
import { MONITOR_ARGS } from '../oned-signatures.js';
import { parseMonitorRequest } from './ds-driver-action.js';
import { monitorHost } from './monitor-host.js';

/**
 * Image datastore `monitor` (datastore/fs/monitor, docs/opennebula/monitoring.md#image-datastore-monitor): df of BASE_PATH on a BRIDGE_LIST
 * host or the front-end, printed as three lines.
 */
export const monitorImageDs = defineAction(
  {
    signature: MONITOR_ARGS,
    does: "reports the image datastore's usage (df of BASE_PATH) from one BRIDGE_LIST or front-end agent",
  },
  async (ctx) => {
    const req = parseMonitorRequest(ctx.stdin);
    if (!req.basePath.startsWith('/')) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `datastore ${req.datastoreId}: BASE_PATH "${req.basePath}" is not an absolute path`,
      );
    }
    const host = await monitorHost(ctx, req.bridgeList);
    const r = await ctx.ops.call(host, 'monitorDatastore', {
      datastoreDir: cleanPath(req.basePath),
      vmDisks: false,
    });
    return { stdout: `USED_MB=${r.usedMb}\nFREE_MB=${r.freeMb}\nTOTAL_MB=${r.totalMb}\n` };
  },
);
