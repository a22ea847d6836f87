import type { ActionContext } from '../action-context.js';
// eslint-disable-next-line no-restricted-imports -- until the driver names move to common/
import { TM_DRIVER_SHARED } from '../../../../shims/src/actions.js';
import type { HostPath } from '../host-path.js';

/**
 * OpenNebula's enable_local_monitoring: `<system datastore dir>/.monitor` names the TM driver, so the
 * host's probes run `tm/<driver>/monitor_ds` on that datastore.
 */
export async function enableLocalMonitoring(ctx: ActionContext, datastoreDir: HostPath): Promise<void> {
  const driver = systemTm(ctx);
  // A shared system datastore is monitored once, centrally (tm monitor), never from the hosts.
  if (driver === TM_DRIVER_SHARED) return;
  await ctx.ops.call(datastoreDir.host, 'setMonitorMarker', { datastoreDir: datastoreDir.path, driver });
}

/** The system datastore's TM: the mixed-mode suffix (`clone.ssh` → ssh), else the driver itself. */
export function systemTm(ctx: ActionContext): string {
  const dot = ctx.action.lastIndexOf('.');
  return dot > 0 ? ctx.action.slice(dot + 1) : ctx.driver;
}
