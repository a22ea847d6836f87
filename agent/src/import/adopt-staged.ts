import { type FileHandle, open, stat, utimes } from 'node:fs/promises';
import { replaceIntoPlace, syncTree } from '../../../common/src/files/atomic-file.js';
import { INHERITED_FD_PATH, runTool } from '../../../common/src/tools/run-tool.js';
import { COMPRESSION_MAGIC_BYTES, sniffCompression } from './compression.js';
import { Digests } from './digests.js';
import { FORMAT_HEAD_BYTES, type SniffedFormat, sniffFormat } from './format-sniff.js';
import { hashFile } from './hash-file.js';
import { type ImportJob, type ImportOutcome, importFailure } from './import-pipeline.js';
import { refuseUnstorable } from './refuse-unstorable.js';
import { needsConversion, storeImage } from './store-image.js';

export type StagedJob = Omit<ImportJob, 'source' | 'limitBytesPerSecond'>;

/**
 * An image another agent sent (already received beside the destination at `staged`, its SHA-256
 * checked end to end by the data path) kept as the image itself when it needs neither
 * decompression nor conversion: the same checks as the pipeline's (format detected from the same
 * first bytes by the same code and pinned, a qcow2 read back by qemu-img and refused unless
 * standalone, the digests verified, read in a worker thread), zero blocks dug out as holes
 * (`fallocate --dig-holes`, only when the file has allocated blocks of zeros) or, for SPARSE=no,
 * every hole allocated (`fallocate -l`), then fsynced and renamed into place: one write of the
 * image instead of two (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 * Undefined, with nothing done, when the pipeline must read it (compressed, to be converted, empty,
 * a foreign format). On failure `staged` is left for the caller to remove; the destination is as
 * it was.
 */
export async function adoptStaged(
  job: StagedJob,
  staged: string,
  sourceName: string,
): Promise<ImportOutcome | undefined> {
  const digests = new Digests({ md5: job.md5, sha1: job.sha1 }, job.what);
  let fh: FileHandle | undefined;
  try {
    fh = await open(staged, 'r');
    const head = await readHead(fh, Math.max(COMPRESSION_MAGIC_BYTES, FORMAT_HEAD_BYTES));
    if (head.length === 0) return undefined;
    if (!job.noDecompress && sniffCompression(head) !== undefined) return undefined;
    const sniffed: SniffedFormat = job.plainFile ? { kind: 'raw' } : sniffFormat(head);
    if (sniffed.kind !== 'raw' && sniffed.kind !== 'qcow2') return undefined;
    if (!job.plainFile && needsConversion(sniffed, job.convertTo)) return undefined;
    refuseUnstorable(sniffed, job.convertTo, job.what);
    const hashed = await hashFile(fh, digests.algorithms, job.signal);
    const { md5 } = digests.compare(hashed.digests, job.what);
    const allocated = (await fh.stat()).blocks * 512;
    const tool = { what: job.what, signal: job.signal, fd: fh.fd };
    if (!job.sparse) await runTool('fallocate', ['-l', String(hashed.size), INHERITED_FD_PATH], tool);
    else if (allocated > hashed.dataBlockBytes)
      await runTool('fallocate', ['--dig-holes', INHERITED_FD_PATH], tool);
    await fh.close();
    fh = undefined;
    const stored = job.plainFile
      ? { format: 'raw' as const, virtualSize: hashed.size }
      : await storeImage(staged, staged, {
          sniffed,
          convertTo: job.convertTo,
          sparse: job.sparse,
          signal: job.signal,
          what: job.what,
          progress: job.progress,
        });
    // A new image, as the pipeline writes one: its times are the import's, not the sender's.
    const now = new Date();
    await utimes(staged, now, now);
    job.signal.throwIfAborted();
    await syncTree(staged);
    await replaceIntoPlace(staged, job.destination);
    job.log.info(
      { source: sourceName, bytes: hashed.size, allocated, dataBlockBytes: hashed.dataBlockBytes },
      'received image kept as it is',
    );
    const st = await stat(job.destination);
    return {
      ...stored,
      actualSize: st.blocks * 512,
      fetchedBytes: hashed.size,
      md5,
      compression: undefined,
      detected: sniffed.kind,
    };
  } catch (err) {
    throw importFailure(job, err);
  } finally {
    await fh?.close();
  }
}

/** Up to `bytes` from the start of the file (fewer only when it is shorter). */
async function readHead(fh: FileHandle, bytes: number): Promise<Buffer> {
  const buf = Buffer.alloc(bytes);
  let have = 0;
  while (have < bytes) {
    const { bytesRead } = await fh.read(buf, have, bytes - have, have);
    if (bytesRead === 0) break;
    have += bytesRead;
  }
  return buf.subarray(0, have);
}
