import { NO_OUTPUT } from '../action-context.js';
import { declareAction } from '../define-action.js';
import { MIGRATE_ARGS, MONITOR_ARGS } from '../oned-signatures.js';

/**
 * Actions that have nothing to do in local mode, as in OpenNebula's ssh driver; like its scripts,
 * they succeed whatever the arguments. `failmigrate`: premigrate copied nothing, so nothing needs
 * undoing.
 */
export const failmigrateNoOp = declareAction(
  { signature: MIGRATE_ARGS, does: 'nothing: premigrate copied nothing' },
  async () => NO_OUTPUT,
);

/**
 * `monitor` of a local system datastore: oned only sends MONITOR for shared system datastores; a
 * local one is monitored on each host through `.monitor`.
 */
export const monitorNoOp = declareAction(
  { signature: MONITOR_ARGS, does: 'nothing: each host monitors a local system datastore (`monitor_ds`)' },
  async () => NO_OUTPUT,
);
