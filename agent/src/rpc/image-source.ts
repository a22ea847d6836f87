import { stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { ImageFormat as WireImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type ImageFormat } from '../qemu/qemu-img.js';
import type { ChainLayer } from '../qemu/safe-chain.js';
import { verifyChain } from '../snapshots/chain-safety.js';
import { formatName } from './image-format.js';
import { type AgentContext, where } from './context.js';
import { requirePath } from './validate.js';

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

/** An RPC that builds `disk_path` from the image `source`: its fields checked and resolved. */
export interface ImageToDisk {
  readonly source: string;
  readonly diskPath: string;
  /** FORMAT from the request (what oned knows). */
  readonly format: ImageFormat;
  /** "host01:<source>", for messages. */
  readonly here: string;
  /** "<action> host01:<source> to <disk_path>": the start of every message. */
  readonly what: string;
  readonly localSource: string;
  readonly disk: string;
  /** `<disk_path>.snap`. */
  readonly diskSnap: string;
  /** `<source>.snap` (a persistent image's snap dir), with `imageSnap: true`. */
  readonly imageSnap?: string;
}

/**
 * Checks and resolves `source`, `disk_path` and `format` of an image-to-disk RPC (clone, ln, ln in
 * MIXED mode). With `imageSnap`, the image's own snap dir is resolved too, and a disk_path naming
 * the source itself is refused (the disk's links would replace the image).
 */
export async function resolveImageToDisk(
  agent: AgentContext,
  action: string,
  req: { source: string; diskPath: string; format: WireImageFormat },
  opts: { imageSnap: boolean },
): Promise<ImageToDisk> {
  const source = requirePath(agent, action, 'source', req.source);
  const diskPath = requirePath(agent, action, 'disk_path', req.diskPath);
  const format = formatName(agent, action, 'format', req.format);
  const here = where(agent, source);
  const what = `${action} ${here} to ${diskPath}`;
  if (opts.imageSnap && diskPath === source) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: disk_path is the source itself`);
  }
  const localSource = await agent.roots.resolve(source, 'source');
  await agent.roots.resolveTarget(source, 'source');
  let imageSnap: string | undefined;
  if (opts.imageSnap) {
    imageSnap = await agent.roots.resolve(`${source}.snap`, 'source');
    await agent.roots.resolveTarget(`${source}.snap`, 'source');
  }
  const disk = await agent.roots.resolve(diskPath, 'disk_path');
  const diskSnap = await agent.roots.resolve(`${diskPath}.snap`, 'disk_path');
  return {
    source,
    diskPath,
    format,
    here,
    what,
    localSource,
    disk,
    diskSnap,
    ...(imageSnap !== undefined ? { imageSnap } : {}),
  };
}
