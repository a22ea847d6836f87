import type { ActionContext } from '../action-context.js';
import type { HostPath } from '../host-path.js';

/**
 * OpenNebula's enable_local_monitoring: `<system datastore dir>/.monitor` names the TM driver, so the
 * host's probes run `tm/<driver>/monitor_ds` on that datastore.
 */
export async function enableLocalMonitoring(ctx: ActionContext, datastoreDir: HostPath): Promise<void> {
  await ctx.ops.call(datastoreDir.host, 'setMonitorMarker', {
    datastoreDir: datastoreDir.path,
    driver: ctx.driver,
  });
}
