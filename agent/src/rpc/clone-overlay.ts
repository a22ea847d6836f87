import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type {
  CloneOverlayRequest,
  CloneOverlayResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { isInside } from '../paths/roots.js';
import { storedNames } from '../paths/stored-name.js';
import type { ChainLayer } from '../qemu/safe-chain.js';
import { chainEntries, entryPath } from '../snapshots/chain-safety.js';
import { type CloneTarget, buildCloneLayout, isOverlayOn } from '../snapshots/clone-layout.js';
import { withParents } from '../files/make-parents.js';
import type { AgentContext, CallContext } from './context.js';
import { imageFormat } from './image-format.js';
import { readImageSource, resolveImageToDisk } from './image-source.js';

/**
 * qcow2/shared `clone`: `disk.N -> disk.N.snap/0`, an overlay on the image (or a standalone copy
 * with QCOW2_STANDALONE); a raw image is copied to `disk.N`. A repeat that finds the overlay
 * already built on this source changes nothing: a retried clone must not discard guest writes.
 */
export async function cloneOverlay(
  agent: AgentContext,
  req: CloneOverlayRequest,
  call: CallContext,
): Promise<CloneOverlayResponse> {
  const action = 'clone overlay';
  const r = await resolveImageToDisk(agent, action, req, { imageSnap: false });
  const { source, diskPath, here, what, localSource, disk, diskSnap: snapDir } = r;
  return agent.locks.withLock(
    [disk, snapDir],
    what,
    async () => {
      const started = performance.now();
      const { format, layers } = await readImageSource(agent, localSource, r.format, here, what, call.signal);
      await assertNotReplacingChain(disk, snapDir, layers, what);
      const target: CloneTarget = {
        disk,
        snapDir,
        source: localSource,
        sourceFormat: format,
        what,
        signal: call.signal,
        scope: agent.roots,
        names: storedNames(agent.roots),
      };
      let built = 'copy';
      // Made only now, after every check; taken away again if the clone fails.
      try {
        await withParents(dirname(disk), async () => {
          if (format === 'raw') {
            await agent.copyLocal(await realpath(localSource), disk, {
              sparse: req.sparse,
              signal: call.signal,
              progress: call.progress,
            });
          } else if (!req.standalone && (await isOverlayOn(target))) {
            built = 'kept';
          } else {
            await buildCloneLayout(target, { standalone: req.standalone, sparse: req.sparse });
            built = req.standalone ? 'standalone' : 'overlay';
          }
        });
      } catch (err) {
        throw asStorageError(err, action, `${here} to ${diskPath}`);
      }
      call.log.info(
        { source, disk: diskPath, format, built, ms: Math.round(performance.now() - started) },
        'cloned',
      );
      return { format: imageFormat(format) };
    },
    call.signal,
  );
}

/**
 * Refuses when the disk entry, or anything inside `disk.N.snap/`, is a layer the source is read
 * through: the clone replaces both, and would remove or overwrite its own source.
 */
export async function assertNotReplacingChain(
  disk: string,
  snapDir: string,
  layers: readonly ChainLayer[],
  what: string,
): Promise<void> {
  const entries = await chainEntries(layers);
  const diskEntry = await entryPath(disk).catch(() => undefined);
  const snapReal = await realpath(snapDir).catch(() => undefined);
  for (const e of entries) {
    if (e === diskEntry || (snapReal !== undefined && isInside(e, snapReal))) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${what}: the disk or its snap dir is a layer of the source's own backing chain`,
      );
    }
  }
}
