import { lstat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { CopyRequest, CopyResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/**
 * Same-host copy through copyLocal, which keeps holes and writes under a temporary name beside the
 * destination before renaming it into place: a repeat replaces the copy with an identical one.
 */
export async function copyPath(
  agent: AgentContext,
  req: CopyRequest,
  call: CallContext,
): Promise<CopyResponse> {
  const source = requireField(agent, 'copy', 'source', req.source);
  const destination = requireField(agent, 'copy', 'destination', req.destination);
  // A source that is a symlink (an image linked to another disk) is followed, and only to inside the
  // roots, as OpenSend does: copying the link itself would hand the copy someone else's disk.
  const localSource = await agent.roots.resolveTarget(source, 'source');
  const localDestination = await agent.roots.resolve(destination, 'destination');
  const what = `copy ${where(agent, source)} to ${destination}`;
  if (localSource === localDestination) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: source and destination are the same file`);
  }
  return agent.locks.withLock(
    [localSource, localDestination],
    what,
    async () => {
      await lstat(localSource).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: the source does not exist`);
        throw asStorageError(err, 'copy', where(agent, source));
      });
      const started = performance.now();
      const { bytes } = await agent
        .copyLocal(localSource, localDestination, {
          sparse: req.sparse,
          signal: call.signal,
          progress: call.progress,
        })
        .catch((err: unknown) => {
          // cp's own words name this host's real paths; oned's operator reads the datastore's.
          if (err instanceof StorageError && err.reason === 'NO_SPACE')
            throw new StorageError('NO_SPACE', `${what}: no space left on the destination filesystem`, {
              cause: err,
            });
          throw asStorageError(err, 'copy', `${where(agent, source)} to ${destination}`);
        });
      call.log.info(
        { source, destination, bytes, sparse: req.sparse, ms: Math.round(performance.now() - started) },
        'copied',
      );
      return { bytes };
    },
    call.signal,
  );
}
