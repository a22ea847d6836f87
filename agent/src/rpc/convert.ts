import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { ConvertRequest, ConvertResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { convert, imageInfo } from '../qemu/qemu-img.js';
import { chainEntries, entryPath, verifyChain } from '../snapshots/chain-safety.js';
import { fileOf, readSnapDir, shownOf, snapshotFileId } from '../snapshots/snap-dir.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requirePath } from './validate.js';
import { makeParents, type MadeDirectories } from '../files/make-parents.js';
import { inPlaceActiveFile } from '../image-snapshots/current-state.js';

/**
 * A standalone copy of a disk (its whole backing chain flattened) or of one of its snapshots, for
 * cpds and mvds: `qemu-img convert` into a temporary name beside the destination, then rename.
 * A repeat writes the same copy again.
 */
export async function convertImage(
  agent: AgentContext,
  req: ConvertRequest,
  call: CallContext,
): Promise<ConvertResponse> {
  const action = 'convert';
  const source = requirePath(agent, action, 'source', req.source);
  const destination = requirePath(agent, action, 'destination', req.destination);
  const format = formatName(agent, action, 'format', req.format);
  const sourceFormat = formatName(agent, action, 'source_format', req.sourceFormat);
  const snapshot = req.snapshot;
  const here = where(agent, source);
  const what = `${action} ${here}${snapshot ? ` (snapshot ${snapshot.snapId})` : ''} to ${destination}`;
  const localSourceEntry = await agent.roots.resolve(source, 'source');
  const localSource = await agent.roots.resolveTarget(source, 'source');
  const localSnapDir = snapshot
    ? await agent.roots.resolveTarget(
        snapshot.snapDir === ''
          ? `${source}.snap`
          : agent.roots.normalize(snapshot.snapDir, 'snapshot.snap_dir'),
        'snapshot.snap_dir',
      )
    : undefined;
  const localDestination = await agent.roots.resolve(destination, 'destination');
  const imageState = req.imageCurrentState && !snapshot;
  const locks = [
    localSourceEntry,
    localDestination,
    ...(localSnapDir ? [localSnapDir] : []),
    ...(imageState ? [`${localSourceEntry}.snap`] : []),
  ];
  return agent.locks.withLock(
    locks,
    what,
    async () => {
      const started = performance.now();
      let from = localSource;
      if (snapshot && localSnapDir) {
        const snap = await readSnapDir(localSnapDir, what);
        const fileId = snapshotFileId(snap, snapshot.snapId);
        if (fileId === undefined) {
          throw new StorageError(
            'NOT_FOUND',
            `${what}: snapshot ${snapshot.snapId} does not exist (no ${shownOf(snap, snapshot.snapId)})`,
          );
        }
        from = fileOf(snap, fileId);
      }
      if (imageState) {
        from = (await inPlaceActiveFile(agent, localSourceEntry, sourceFormat, what)) ?? from;
      }
      await stat(from).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: the source does not exist`);
        throw asStorageError(err, action, here);
      });
      const opts = { what, signal: call.signal };
      const layers = await verifyChain(from, { ...opts, format: sourceFormat, scope: agent.roots });
      // Renaming over the source or any layer of its chain would change what is being copied.
      const destReal = await realpath(localDestination).catch(() => undefined);
      const reals = await Promise.all(layers.map((l) => realpath(l.filename)));
      const entries = await chainEntries(layers);
      if (
        (destReal !== undefined && reals.includes(destReal)) ||
        entries.has(await entryPath(localDestination).catch(() => ''))
      ) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `${what}: the destination is the source or a layer of its backing chain`,
        );
      }
      let made: MadeDirectories | undefined;
      try {
        made = await makeParents(dirname(localDestination));
        await writeAtomically(localDestination, (temp) =>
          convert(from, temp, { ...opts, sourceFormat, format, sparse: req.sparse, progress: call.progress }),
        );
      } catch (err) {
        // The directories made for the destination go again (a cpds into a new image directory).
        await made?.undo();
        throw asStorageError(err, action, `${here} to ${destination}`);
      }
      const info = await imageInfo(localDestination, format, opts);
      call.log.info(
        { source, destination, format, layers: layers.length, ms: Math.round(performance.now() - started) },
        'converted',
      );
      return { virtualSize: info.virtualSize, actualSize: info.actualSize };
    },
    call.signal,
  );
}
