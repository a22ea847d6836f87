import { asStorageError } from '../../../common/src/errors.js';
import type {
  SnapshotCreateRequest,
  SnapshotCreateResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { createQcow2Snapshot } from '../snapshots/qcow2-snapshots.js';
import { createRawSnapshot } from '../snapshots/raw-snapshots.js';
import type { AgentContext, CallContext } from './context.js';
import { resolveSnapshot } from './snapshot-request.js';

/**
 * tm snap_create for a powered-off VM: a full copy for raw disks, a new overlay in OpenNebula's
 * `disk.N.snap/` chain for qcow2 (snapshots/qcow2-snapshots.ts). A repeat changes nothing and
 * answers created=false.
 */
export async function snapshotCreate(
  agent: AgentContext,
  req: SnapshotCreateRequest,
  call: CallContext,
): Promise<SnapshotCreateResponse> {
  const s = await resolveSnapshot(agent, 'snapshot create', req, true);
  return agent.locks.withLock(
    [s.disk, s.snapDir],
    s.what,
    async () => {
      const started = Date.now();
      const signal = call.signal;
      const result = await (
        s.format === 'qcow2'
          ? createQcow2Snapshot({ ...s, signal }, s.id)
          : createRawSnapshot({ ...s, copy: agent.copyLocal, signal }, s.id)
      ).catch((err: unknown) => {
        throw asStorageError(err, 'snapshot create', s.here);
      });
      call.log.info(
        { disk: req.diskPath, snapId: s.id, format: s.format, ...result, ms: Date.now() - started },
        result.created ? 'snapshot created' : 'snapshot already there',
      );
      return result;
    },
    call.signal,
  );
}
