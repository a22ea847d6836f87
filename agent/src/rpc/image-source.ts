import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { ChainLayer } from '../qemu/safe-chain.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import type { AgentContext } from './context.js';

/**
 * Reads the image an RPC builds a disk from: NOT_FOUND when it is missing, and its whole backing
 * chain validated layer by layer as `format` (what oned knows; never read from the image itself).
 */
export async function readImageSource(
  agent: AgentContext,
  localSource: string,
  format: ImageFormat,
  here: string,
  what: string,
  signal: AbortSignal,
): Promise<{ format: ImageFormat; layers: ChainLayer[] }> {
  await stat(localSource).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StorageError('NOT_FOUND', `${what}: the source does not exist`);
    throw asStorageError(err, 'source', here);
  });
  const layers = await verifyChain(localSource, { what, signal, format, scope: agent.roots });
  return { format, layers };
}
