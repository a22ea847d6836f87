import { asStorageError } from '../../../common/src/errors.js';
import type {
  SnapshotDeleteRequest,
  SnapshotDeleteResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { deleteQcow2SnapshotLive } from '../live-snapshots/live-delete.js';
import { liveTarget } from '../live-snapshots/live-domain.js';
import { deleteQcow2Snapshot } from '../snapshots/qcow2-snapshots.js';
import { deleteRawSnapshot } from '../snapshots/raw-snapshots.js';
import type { AgentContext, CallContext } from './context.js';
import { resolveSnapshot, withSnapshotLocks } from './snapshot-request.js';

/**
 * tm snap_delete for a powered-off VM. qcow2 rebases whatever is built on the snapshot onto its
 * backing file before removing it; raw removes the copy. An absent snapshot answers existed=false.
 * `active` is not needed offline (the chain itself says which files back on the snapshot); a
 * disagreement with the chain is logged, because oned's ACTIVE lookup has known quirks.
 * With `live` (the VM runs), a snapshot in the running disk's chain is merged by libvirt
 * (live-snapshots/live-delete.ts); raw snapshots are plain copies and are removed either way.
 */
export async function snapshotDelete(
  agent: AgentContext,
  req: SnapshotDeleteRequest,
  call: CallContext,
): Promise<SnapshotDeleteResponse> {
  const s = await resolveSnapshot(agent, 'snapshot delete', req, false);
  const live = req.live
    ? liveTarget(req.live, { uri: agent.libvirtUri, what: s.what, signal: call.signal, log: call.log })
    : undefined;
  return withSnapshotLocks(
    agent,
    s,
    call.signal,
    async (t, signal) => {
      const started = performance.now();
      const fail = (err: unknown): never => {
        throw asStorageError(err, 'snapshot delete', s.here);
      };
      if (s.format === 'raw') {
        const { existed } = await deleteRawSnapshot({ ...t, copy: agent.copyLocal, signal }, s.id).catch(
          fail,
        );
        call.log.info({ disk: req.diskPath, snapId: s.id, format: s.format, existed }, 'snapshot deleted');
        return { existed };
      }
      const result = live
        ? await deleteQcow2SnapshotLive({ ...t, signal }, s.id, live, call.progress).catch(fail)
        : await deleteQcow2Snapshot({ ...s, signal }, s.id).catch(fail);
      if (result.existed && result.activeRebased !== req.active) {
        call.log.warn(
          { disk: req.diskPath, snapId: s.id, active: req.active, activeRebased: result.activeRebased },
          'the ACTIVE flag oned sent disagrees with the backing chain; the chain was followed',
        );
      }
      call.log.info(
        {
          disk: req.diskPath,
          snapId: s.id,
          format: s.format,
          ...result,
          ms: Math.round(performance.now() - started),
        },
        result.existed ? 'snapshot deleted' : 'snapshot already gone',
      );
      return { existed: result.existed };
    },
    live?.domain,
  );
}
