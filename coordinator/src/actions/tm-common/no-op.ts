import { NO_OUTPUT, type ActionContext, type ActionResult } from '../action-context.js';

/**
 * Actions that have nothing to do in local mode, as in OpenNebula's ssh driver: `failmigrate`
 * (premigrate copied nothing, so nothing needs undoing) and `monitor` (oned only sends MONITOR for
 * shared system datastores; a local one is monitored on each host through `.monitor`).
 */
export async function noOp(_ctx: ActionContext): Promise<ActionResult> {
  return NO_OUTPUT;
}
