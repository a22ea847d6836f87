import { StorageError } from '../../../common/src/errors.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import type { ChainScope } from '../qemu/layer-places.js';
import { type ImageFormat, convert } from '../qemu/qemu-img.js';
import { readChain } from '../qemu/safe-chain.js';
import { hashFile } from '../import/hash-file.js';
import type { Progress } from '../jobs/job-registry.js';
import { type FileIdentity, openVerifiedFile } from '../transfer/verified-open.js';

/** A temporary file beside an image, kept from the stale-temporary sweeps until released. */
export interface TempHold {
  /** Its real path (the image's directory, resolved, and a hidden `.<name>.tmp-<agent>-<hex>`). */
  readonly path: string;
  /** Removes the file (if it is there) and lets the sweeps have the name again. */
  release(): Promise<void>;
}

export interface PrepareExportOptions {
  /** Starts every message: "export host01:/var/lib/one/datastores/1/abc". */
  what: string;
  signal: AbortSignal;
  /** The agent's roots: where the layers of a chain may lie. */
  scope: ChainScope;
  /** A temporary beside `entry` for a flattened copy. */
  holdTemp(entry: string): TempHold;
  /** Where the flattening ("flattening") and the MD5 pass ("checksumming") report progress. */
  progress?: ((p: Progress) => void) | undefined;
}

/** A standalone image ready to be served: the file, what it was when hashed, and its MD5. */
export interface PreparedExport {
  readonly path: string;
  readonly identity: FileIdentity;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly md5: string;
  readonly virtualSize: number;
  /** Layers of the image's chain (1: served as it is; more: flattened into `temp`). */
  readonly layers: number;
  /** The flattened copy, when one was made; the export removes it when it ends. */
  readonly temp?: TempHold;
}

/**
 * Makes the image `real` (SOURCE with a link into its `.snap` followed; `entry` is SOURCE's own
 * directory entry) servable as one standalone file in its own format. Its chain is read one
 * validated layer at a time (agent/src/qemu/safe-chain.ts); a standalone image (raw, or qcow2
 * without backing file) is served as it is, a chain is flattened with `qemu-img convert -f FMT -O
 * FMT` into a temporary beside `entry` (docs/image-datastore.md#export-for-marketplaces). The
 * served file is then opened, proven (no symlink on its path) and read once for its MD5, in a
 * worker thread. On failure the temporary is gone.
 */
export async function prepareExport(
  entry: string,
  real: string,
  format: ImageFormat,
  opts: PrepareExportOptions,
): Promise<PreparedExport> {
  const { what, signal } = opts;
  const layers = await readChain(real, format, { what, signal, scope: opts.scope });
  const top = layers[0] as (typeof layers)[number];
  const temp = layers.length > 1 ? opts.holdTemp(entry) : undefined;
  try {
    if (temp) {
      await convert(real, temp.path, {
        sourceFormat: format,
        format,
        sparse: true,
        what: `${what}: flattening ${layers.length} layers`,
        signal,
        timeoutMs: WHOLE_DISK_TIMEOUT_MS,
        progress: opts.progress,
        progressPhase: 'flattening',
      });
    }
    const path = temp?.path ?? real;
    const opened = await openVerifiedFile(path, what);
    try {
      // In a worker thread (import/hash-file.ts): the event loop keeps serving other downloads.
      const report = opts.progress;
      report?.({ done: 0, total: opened.size, phase: 'checksumming' });
      const hashed = await hashFile(
        opened.fh,
        ['md5'],
        signal,
        report && ((done) => report({ done, total: opened.size })),
      );
      const after = await opened.fh.stat({ bigint: true });
      if (
        after.mtimeNs !== opened.mtimeNs ||
        hashed.size !== opened.size ||
        Number(after.size) !== opened.size
      ) {
        throw new StorageError(
          'BUSY',
          `${what}: the image was written while its MD5 was taken (is it in use?); retry when it is not`,
        );
      }
      const md5 = hashed.digests[0] as string;
      return {
        path,
        identity: opened.identity,
        size: opened.size,
        mtimeNs: opened.mtimeNs,
        md5,
        virtualSize: top.virtualSize,
        layers: layers.length,
        ...(temp ? { temp } : {}),
      };
    } finally {
      await opened.fh.close();
    }
  } catch (err) {
    await temp?.release();
    throw err;
  }
}
