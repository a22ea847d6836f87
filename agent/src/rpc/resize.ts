import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { ResizeRequest, ResizeResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { MIB } from '../../../common/src/units.js';
import { resize as qemuResize } from '../qemu/qemu-img.js';
import { readChain } from '../qemu/safe-chain.js';
import { formatName } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField, requirePositive } from './validate.js';

/**
 * Grows an image to size_mb MiB (tm/common/resize). The current virtual size decides: equal is a
 * no-op (a repeat succeeds), smaller is grown, larger is refused (shrinking loses guest data).
 * qemu-img resizes in place; it either applies the new size or fails without changing it.
 */
export async function resizeImage(
  agent: AgentContext,
  req: ResizeRequest,
  call: CallContext,
): Promise<ResizeResponse> {
  const path = requireField(agent, 'resize', 'path', req.path);
  const sizeMb = requirePositive(agent, 'resize', 'size_mb', req.sizeMb);
  const format = formatName(agent, 'resize', 'format', req.format);
  // disk.N may be a symlink into an image datastore: follow it, but only within the roots.
  const local = await agent.roots.resolveTarget(path, 'path');
  const here = where(agent, path);
  const what = `resize ${here}`;
  return agent.locks.withLock(
    [local],
    what,
    async () => {
      await stat(local).catch((err: unknown) => {
        throw asStorageError(err, 'resize', here);
      });
      const opts = { signal: call.signal, what, scope: agent.roots };
      // The whole chain is validated first: qemu-img resize opens every layer.
      const [before] = await readChain(local, format, opts);
      if (!before) throw new StorageError('INTERNAL', `${what}: no image described`);
      const target = sizeMb * MIB;
      if (before.virtualSize === target) return { changed: false, virtualSize: before.virtualSize };
      if (before.virtualSize > target) {
        throw new StorageError(
          'INVALID_ARGUMENT',
          `${what}: shrinking from ${before.virtualSize} to ${target} bytes (${sizeMb} MiB) is refused`,
        );
      }
      await qemuResize(local, sizeMb, { ...opts, format, preallocate: req.preallocate });
      const [after = before] = await readChain(local, format, { ...opts, chain: false });
      call.log.info(
        { path, from: before.virtualSize, to: after.virtualSize, preallocate: req.preallocate },
        'resized',
      );
      return { changed: true, virtualSize: after.virtualSize };
    },
    call.signal,
  );
}
