import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { requireNoBlockJob } from '../libvirt/domain.js';
import { type BlockJobProgress, blockJobProgress } from '../libvirt/block-job-progress.js';
import { virsh } from '../libvirt/virsh.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { LiveTarget } from './live-domain.js';

/**
 * A standalone copy of a running domain's disk at `destination` (the whole chain, flattened):
 * `virsh blockcopy --wait --finish --transient-job` into a temporary name beside it, then a rename.
 * The domain keeps running on its own disk; a failed or cancelled copy leaves nothing behind.
 */
export async function blockCopyTo(
  t: LiveTarget,
  destination: string,
  format: ImageFormat,
  progress?: BlockJobProgress,
): Promise<void> {
  await requireNoBlockJob(t.domain, t.target, t.virsh);
  const watched = blockJobProgress(progress);
  try {
    await writeAtomically(destination, (tmp) =>
      virsh(
        [
          'blockcopy',
          t.domain,
          t.target,
          '--dest',
          tmp,
          '--format',
          format,
          '--wait',
          '--finish',
          '--transient-job',
          ...watched.args,
        ],
        { ...t.virsh, timeoutMs: WHOLE_DISK_TIMEOUT_MS, ...watched.options },
      ),
    );
    watched.finish();
  } catch (err) {
    // A cancelled virsh leaves libvirt's job running: stop it, so the disk is free again.
    if (t.virsh.signal?.aborted) {
      await virsh(['blockjob', t.domain, t.target, '--abort'], {
        uri: t.virsh.uri,
        what: t.virsh.what,
      }).catch(() => undefined);
    }
    throw err;
  }
}
