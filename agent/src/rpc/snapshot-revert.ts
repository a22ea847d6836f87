import { asStorageError } from '../../../common/src/errors.js';
import type {
  SnapshotRevertRequest,
  SnapshotRevertResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { revertQcow2Snapshot } from '../snapshots/qcow2-snapshots.js';
import { revertRawSnapshot } from '../snapshots/raw-snapshots.js';
import type { AgentContext, CallContext } from './context.js';
import { resolveSnapshot, withSnapshotLocks } from './snapshot-request.js';

/**
 * tm snap_revert for a powered-off VM: qcow2 replaces the active layer by an empty overlay on the
 * snapshot, raw replaces the disk's file by a copy of the snapshot. A repeat gives the same disk.
 */
export async function snapshotRevert(
  agent: AgentContext,
  req: SnapshotRevertRequest,
  call: CallContext,
): Promise<SnapshotRevertResponse> {
  const s = await resolveSnapshot(agent, 'snapshot revert', req, true);
  return withSnapshotLocks(agent, s, call.signal, async (t, signal) => {
    const started = performance.now();
    await (
      s.format === 'qcow2'
        ? revertQcow2Snapshot({ ...t, signal }, s.id)
        : revertRawSnapshot({ ...t, copy: agent.copyLocal, signal }, s.id)
    ).catch((err: unknown) => {
      throw asStorageError(err, 'snapshot revert', s.here);
    });
    call.log.info(
      { disk: req.diskPath, snapId: s.id, format: s.format, ms: Math.round(performance.now() - started) },
      'snapshot reverted',
    );
    return {};
  });
}
