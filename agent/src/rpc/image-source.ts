import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { ChainLayer } from '../qemu/backing-chain.js';
import { IMAGE_FORMATS, type ImageFormat } from '../qemu/qemu-img.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import type { AgentContext } from './context.js';

/**
 * Reads the image an RPC builds a disk from: NOT_FOUND when it is missing, its whole backing chain
 * checked (no loop, every layer inside the roots), and its format, which must be raw or qcow2.
 */
export async function readImageSource(
  agent: AgentContext,
  localSource: string,
  here: string,
  what: string,
  signal: AbortSignal,
): Promise<{ format: ImageFormat; layers: ChainLayer[] }> {
  await stat(localSource).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: the source does not exist`);
    throw asStorageError(err, 'source', here);
  });
  const layers = await verifyChain(localSource, {
    what,
    signal,
    confine: (file: string) => agent.roots.confineLocal(file, what),
  });
  const found = layers[0]?.format ?? '';
  const format = IMAGE_FORMATS.find((f) => f === found);
  if (format === undefined) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${what}: the source is ${found}; only ${IMAGE_FORMATS.join(' and ')} images are supported`,
    );
  }
  return { format, layers };
}
