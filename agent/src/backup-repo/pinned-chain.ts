import { WHOLE_DISK_TIMEOUT_MS, runTool } from '../../../common/src/tools/run-tool.js';
import { ConvertProgress } from '../qemu/convert-progress.js';
import { QEMU_IMG, imageInfo, type ProgressOptions, type QemuOptions } from '../qemu/qemu-img.js';

interface PinnedLayer {
  driver: 'qcow2';
  file: { driver: 'file'; filename: string };
  backing: PinnedLayer | null;
}

/**
 * A qemu `json:` image name for a qcow2 chain whose every layer is given explicitly (oldest first
 * in `layers`, real local paths): each is read as qcow2 through the `file` driver at exactly that
 * path, its backing is the previous one and the oldest has none (`backing: null`). The backing
 * names written inside the files are never looked at (docs/backups.md#restoring-from-the-repository).
 */
export function pinnedChainName(layers: readonly string[]): string {
  let below: PinnedLayer | null = null;
  for (const filename of layers)
    below = { driver: 'qcow2', file: { driver: 'file', filename }, backing: below };
  if (below === null) throw new Error('pinnedChainName: no layers');
  return `json:${JSON.stringify(below)}`;
}

export interface MergeOptions extends QemuOptions, ProgressOptions {
  /**
   * The destination is a scratch file that is read once and removed (OpenBackupChain's staging):
   * qemu-img writes it through the page cache without flushing it (`-t unsafe`); a crash leaves
   * a temporary the agent's start-up sweep removes. Without it the result is flushed.
   */
  scratch?: boolean;
}

/**
 * `qemu-img convert -q -O qcow2 json:{...} DEST`: what the pinned chain reads, as one standalone
 * qcow2 (holes stay holes). The source format is pinned by the json name's `driver` keys. With
 * `progress`, -p replaces -q; the total defaults to the newest layer's virtual size.
 */
export async function mergePinnedChain(
  layers: readonly string[],
  destination: string,
  opts: MergeOptions = {},
): Promise<void> {
  const cache = opts.scratch ? ['-t', 'unsafe'] : [];
  const report = opts.progress;
  const newest = layers.at(-1);
  const figures =
    report && newest !== undefined
      ? new ConvertProgress(
          report,
          opts.progressTotal ?? (await imageInfo(newest, 'qcow2', opts)).virtualSize,
          opts.progressPhase ?? 'merging',
        )
      : undefined;
  const quiet = figures ? '-p' : '-q';
  await runTool(QEMU_IMG, ['convert', quiet, ...cache, '-O', 'qcow2', pinnedChainName(layers), destination], {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.what ? { what: opts.what } : {}),
    timeoutMs: opts.timeoutMs ?? WHOLE_DISK_TIMEOUT_MS,
    ...(figures ? { onStdout: (chunk: Buffer) => figures.push(chunk) } : {}),
  });
  figures?.finish();
}
