// The limits `one-storage status` and `doctor` judge by (docs/operations.md#status).

/** A datastore filesystem this full (used / total) is a WARNING... */
export const DATASTORE_WARNING_USED_PERCENT = 90;
/** ...and this full FAILED: a copy, a snapshot or a backup may no longer fit. */
export const DATASTORE_FAILED_USED_PERCENT = 95;
/** Clock skew between the front-end and an agent above this is a WARNING (logs no longer line up)... */
export const SKEW_WARNING_MS = 2_000;
/** ...and above this FAILED (common/src/clock-skew.ts says why). */
export { SKEW_FAILED_MS } from '../../../common/src/clock-skew.js';
