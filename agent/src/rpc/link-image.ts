import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { asStorageError } from '../../../common/src/errors.js';
import type { LinkImageRequest, LinkImageResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { storedNames } from '../paths/stored-name.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { ensureSnapDir, fileOf, readSnapDir, relink } from '../snapshots/snap-dir.js';
import { withParents } from '../files/make-parents.js';
import type { AgentContext, CallContext } from './context.js';
import { readImageSource, resolveImageToDisk } from './image-source.js';

/** The first entry of a persistent image's snap dir: `<IMG>.snap/0 -> <IMG>`. */
const FIRST_ID = 0;

/**
 * qcow2/shared `ln` of a persistent image: the VM writes into the image datastore, through
 * `disk.N -> <IMG>.snap/<latest>` (relative, `../../1/<hash>.snap/K`, or oned's path when the
 * image is under another root: never this host's own directory), so snapshots stay with the image.
 * A raw image is linked directly. A repeat sets the same links.
 */
export async function linkImage(
  agent: AgentContext,
  req: LinkImageRequest,
  call: CallContext,
): Promise<LinkImageResponse> {
  const action = 'link image';
  const r = await resolveImageToDisk(agent, action, req, { imageSnap: true });
  const { source, diskPath, here, what, localSource, disk, diskSnap } = r;
  const imageSnap = r.imageSnap as string;
  return agent.locks.withLock(
    [disk, diskSnap, imageSnap],
    what,
    async () => {
      const started = performance.now();
      const { format } = await readImageSource(agent, localSource, r.format, here, what, call.signal);
      let snapshotId = 0;
      // Made only now, after every check; taken away again if the link fails.
      try {
        await withParents(dirname(disk), async () => {
          if (format === 'raw') {
            await relink(disk, await storedNames(agent.roots).nameFor(localSource, { dir: dirname(disk) }));
          } else {
            snapshotId = await linkQcow2(agent, { localSource, imageSnap, disk, what, signal: call.signal });
            // A VM-dir snap dir left by an earlier clone would shadow the image's snapshots.
            await rm(diskSnap, { recursive: true, force: true });
          }
        });
      } catch (err) {
        throw asStorageError(err, action, `${here} to ${diskPath}`);
      }
      call.log.info(
        { source, disk: diskPath, format, snapshotId, ms: Math.round(performance.now() - started) },
        'linked',
      );
      return { snapshotId };
    },
    call.signal,
  );
}

/** Lays out `<IMG>.snap` (self link, `0 -> IMG` when empty) and links the disk to the latest entry. */
async function linkQcow2(
  agent: AgentContext,
  p: { localSource: string; imageSnap: string; disk: string; what: string; signal: AbortSignal },
): Promise<number> {
  const names = storedNames(agent.roots);
  const snap = await readSnapDir(p.imageSnap, p.what);
  await ensureSnapDir(snap, true, p.what);
  const ids = [...snap.files.keys()];
  const latest = ids.length > 0 ? Math.max(...ids) : FIRST_ID;
  if (ids.length === 0) {
    await relink(fileOf(snap, FIRST_ID), await names.nameFor(p.localSource, { dir: snap.dir }));
  }
  const target = fileOf(snap, latest);
  await verifyChain(target, { what: p.what, signal: p.signal, format: 'qcow2', scope: agent.roots });
  await relink(p.disk, await names.nameFor(target, { dir: dirname(p.disk) }));
  return latest;
}
