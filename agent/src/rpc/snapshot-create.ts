import { asStorageError } from '../../../common/src/errors.js';
import type {
  SnapshotCreateRequest,
  SnapshotCreateResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { liveTarget } from '../live-snapshots/live-domain.js';
import { createQcow2SnapshotLive, createRawSnapshotLive } from '../live-snapshots/live-create.js';
import { createQcow2Snapshot } from '../snapshots/qcow2-snapshots.js';
import { createRawSnapshot } from '../snapshots/raw-snapshots.js';
import type { AgentContext, CallContext } from './context.js';
import { resolveSnapshot, withSnapshotLocks } from './snapshot-request.js';

/**
 * tm snap_create for a powered-off VM: a full copy for raw disks, a new overlay in OpenNebula's
 * `disk.N.snap/` chain for qcow2 (snapshots/qcow2-snapshots.ts). A repeat changes nothing and
 * answers created=false. With `live` (snap_create_live), the running domain is switched onto the
 * new overlay by libvirt, or a raw disk is copied with a block copy (live-snapshots/).
 */
export async function snapshotCreate(
  agent: AgentContext,
  req: SnapshotCreateRequest,
  call: CallContext,
): Promise<SnapshotCreateResponse> {
  const action = req.live ? 'snapshot create live' : 'snapshot create';
  const s = await resolveSnapshot(agent, action, req, true);
  const live = req.live
    ? liveTarget(req.live, { uri: agent.libvirtUri, what: s.what, signal: call.signal, log: call.log })
    : undefined;
  return withSnapshotLocks(
    agent,
    s,
    call.signal,
    async (t, signal) => {
      const started = performance.now();
      const run = (): Promise<{ created: boolean }> => {
        if (live) {
          return t.format === 'qcow2'
            ? createQcow2SnapshotLive({ ...t, signal }, t.id, live)
            : createRawSnapshotLive(t, t.id, live);
        }
        return t.format === 'qcow2'
          ? createQcow2Snapshot({ ...t, signal }, t.id)
          : createRawSnapshot({ ...t, copy: agent.copyLocal, signal }, t.id);
      };
      const result = await run().catch((err: unknown) => {
        throw asStorageError(err, action, s.here);
      });
      call.log.info(
        {
          disk: req.diskPath,
          snapId: s.id,
          format: s.format,
          live: !!live,
          ...result,
          ms: Math.round(performance.now() - started),
        },
        result.created ? 'snapshot created' : 'snapshot already there',
      );
      return result;
    },
    live?.domain,
  );
}
