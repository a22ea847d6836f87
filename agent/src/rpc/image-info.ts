import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import {
  ImageFormat,
  type ImageInfoRequest,
  type ImageInfoResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { readChain } from '../qemu/safe-chain.js';
import { formatName, imageFormat } from './image-format.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField } from './validate.js';

/** An image and its backing chain, read one validated layer at a time (safe-chain.ts). Read-only: no lock. */
export async function imageInfo(
  agent: AgentContext,
  req: ImageInfoRequest,
  call: CallContext,
): Promise<ImageInfoResponse> {
  const path = requireField(agent, 'image info', 'path', req.path);
  const format = formatName(agent, 'image info', 'format', req.format);
  // The real file (a disk.N symlink followed), so bare backing names resolve in its directory.
  const local = await agent.roots.resolveTarget(path, 'path');
  const here = where(agent, path);
  await stat(local).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `image info ${here}: no such file`);
    throw asStorageError(err, 'image info', here);
  });
  const layers = await readChain(local, format, {
    what: `image info ${here}`,
    signal: call.signal,
    scope: agent.roots,
  });
  return {
    layers: layers.map((l) => ({
      filename: l.filename,
      format: imageFormat(l.format),
      virtualSize: l.virtualSize,
      actualSize: l.actualSize,
      backingFilename: l.backingFilename ?? '',
      fullBackingFilename: l.fullBackingFilename ?? '',
      backingFormat:
        l.backingFormat === undefined ? ImageFormat.IMAGE_FORMAT_UNSPECIFIED : imageFormat(l.backingFormat),
    })),
  };
}
