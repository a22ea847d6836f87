import { asStorageError } from '../../../common/src/errors.js';
import type {
  ImageSnapshotRequest,
  ImageSnapshotResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { storedNames } from '../paths/stored-name.js';
import { deleteImageSnapshot } from '../image-snapshots/delete-image-snapshot.js';
import { flattenImageSnapshot } from '../image-snapshots/flatten-image-snapshot.js';
import type { ImageLayout, ImageTarget } from '../image-snapshots/image-layout.js';
import { revertImageSnapshot } from '../image-snapshots/revert-image-snapshot.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';

/** Datastore snap_delete on a persistent image (image-snapshots/delete-image-snapshot.ts). */
export function imageSnapshotDelete(
  agent: AgentContext,
  req: ImageSnapshotRequest,
  call: CallContext,
): Promise<ImageSnapshotResponse> {
  return run(agent, req, call, 'image snapshot delete', deleteImageSnapshot);
}

/** Datastore snap_revert on a persistent image (image-snapshots/revert-image-snapshot.ts). */
export function imageSnapshotRevert(
  agent: AgentContext,
  req: ImageSnapshotRequest,
  call: CallContext,
): Promise<ImageSnapshotResponse> {
  return run(agent, req, call, 'image snapshot revert', async (t, id) => ({
    changed: true,
    layout: await revertImageSnapshot(t, id),
  }));
}

/** Datastore snap_flatten on a persistent image (image-snapshots/flatten-image-snapshot.ts). */
export function imageSnapshotFlatten(
  agent: AgentContext,
  req: ImageSnapshotRequest,
  call: CallContext,
): Promise<ImageSnapshotResponse> {
  return run(agent, req, call, 'image snapshot flatten', flattenImageSnapshot);
}

type Work = (t: ImageTarget, id: number) => Promise<{ changed: boolean; layout: ImageLayout }>;

/**
 * The shape every image snapshot RPC shares: fields checked (naming the bad one), SOURCE, its snap
 * dir and its `.md5sum` resolved inside the roots (a SOURCE or snap dir that leads out through a
 * symlink is PATH_OUTSIDE_ROOTS), then the work under the lock of SOURCE and its snap dir.
 */
async function run(
  agent: AgentContext,
  req: ImageSnapshotRequest,
  call: CallContext,
  action: string,
  work: Work,
): Promise<ImageSnapshotResponse> {
  const source = requirePath(agent, action, 'source', req.source);
  const format = formatName(agent, action, 'format', req.format);
  const here = `${where(agent, source)} (snapshot ${req.snapId})`;
  const what = `${action} ${here}`;
  const localSource = await agent.roots.resolve(source, 'source');
  await agent.roots.resolveTarget(source, 'source');
  const snapDir = await agent.roots.resolve(`${source}.snap`, 'source');
  await agent.roots.resolveTarget(`${source}.snap`, 'source');
  const md5sum = await agent.roots.resolve(`${source}.md5sum`, 'source');
  return agent.locks.withLock(
    [localSource, snapDir],
    what,
    async () => {
      const started = performance.now();
      const t: ImageTarget = {
        source: localSource,
        snapDir,
        md5sum,
        format,
        what,
        signal: call.signal,
        scope: agent.roots,
        names: storedNames(agent.roots),
        copy: agent.copyLocal,
        progress: call.progress,
      };
      const { changed, layout } = await work(t, req.snapId).catch((err: unknown) => {
        throw asStorageError(err, action, here);
      });
      call.log.info(
        {
          source,
          snapId: req.snapId,
          format,
          layout: layout.kind === 'chain' ? `chain (${layout.role})` : layout.kind,
          changed,
          ms: Math.round(performance.now() - started),
        },
        `${action} done`,
      );
      return { changed };
    },
    call.signal,
  );
}
