import { open, rm, stat } from 'node:fs/promises';
import { StorageError, reasonForErrno } from '../../../common/src/errors.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import type { Logger } from '../../../common/src/log.js';
import { DISK_FILE_MODE } from '../files/modes.js';
import type { Progress as JobProgress } from '../jobs/job-registry.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import { type Clock, realClock } from './clock.js';
import { COMPRESSION_MAGIC_BYTES, type Compression, sniffCompression } from './compression.js';
import { decompress } from './decompress.js';
import { Digests } from './digests.js';
import { FORMAT_HEAD_BYTES, type SniffedFormat, sniffFormat } from './format-sniff.js';
import { StartOver } from './http-source.js';
import { type Peeked, peek } from './peek.js';
import { Progress } from './progress.js';
import { refuseUnstorable } from './refuse-unstorable.js';
import { writeSparse } from './sparse-writer.js';
import { needsConversion, storeImage } from './store-image.js';
import { Throttle } from './throttle.js';

/** What a source tells its reader besides the bytes (Progress implements it). */
export interface SourceEvents {
  /** The size announced (Content-Length, the file's size), or undefined when none was. */
  expect(total: number | undefined): void;
  /** A transient failure: the source tries again from `offset`. */
  retrying(why: string, offset: number): void;
}

/** Where an import's bytes come from: opened from the first byte, again after a StartOver. */
export interface ImportSource {
  /** "http://...", "host01:/var/tmp/x": for the log. */
  readonly name: string;
  /** Retries left (http sources spend them; a start-over spends one too). */
  readonly budget: { retries: number };
  open(signal: AbortSignal, events: SourceEvents): AsyncIterable<Buffer>;
}

export interface ImportJob {
  source: ImportSource;
  /** Local path of the image to create or replace. */
  destination: string;
  md5: string;
  sha1: string;
  noDecompress: boolean;
  plainFile: boolean;
  convertTo: ImageFormat | undefined;
  sparse: boolean;
  /** 0: unlimited. */
  limitBytesPerSecond: number;
  what: string;
  signal: AbortSignal;
  log: Logger;
  clock?: Clock;
  /** Where progress goes (CallContext.progress): "downloading", then "converting" when it converts. */
  progress?: ((p: JobProgress) => void) | undefined;
}

export interface ImportOutcome {
  format: ImageFormat;
  virtualSize: number;
  actualSize: number;
  fetchedBytes: number;
  md5: string;
  compression: Compression | undefined;
  detected: SniffedFormat['kind'];
}

/**
 * An import (docs/image-datastore.md#registering-an-image-cp-on-the-agent): the fetched bytes go
 * through the digests (and the bandwidth limit), the decompressor the first bytes call for, the
 * format detection on the first decompressed bytes, into a temporary file beside the destination
 * with zero blocks left as holes; then the checks that need the whole file, the conversion, and
 * the rename into place. Any failure, a cancel included, removes every temporary and leaves the
 * destination as it was.
 */
export async function runImport(job: ImportJob): Promise<ImportOutcome> {
  // Malformed checksums are refused before anything is fetched.
  new Digests({ md5: job.md5, sha1: job.sha1 }, job.what);
  const outcome = await writeAtomically(job.destination, async (temp) => {
    for (;;) {
      try {
        return await attempt(job, temp);
      } catch (err) {
        if (!(err instanceof StartOver) || job.signal.aborted) throw err;
        await rm(temp, { force: true });
        if (job.source.budget.retries <= 0)
          throw new StorageError('SOURCE_UNAVAILABLE', `${job.what}: ${err.message}, and no retry is left`);
        job.source.budget.retries -= 1;
        job.log.warn({ source: job.source.name, why: err.message }, 'import starts over from the first byte');
      }
    }
  }).catch((err: unknown) => {
    throw importFailure(job, err);
  });
  const st = await stat(job.destination);
  return { ...outcome, actualSize: st.blocks * 512 };
}

/** The error an import fails with: TRANSFER_FAILED when cancelled, a StorageError as it is. */
export function importFailure(job: Pick<ImportJob, 'signal' | 'what'>, err: unknown): StorageError {
  if (job.signal.aborted)
    return new StorageError('TRANSFER_FAILED', `${job.what}: cancelled`, { cause: err });
  if (err instanceof StorageError) return err;
  const { reason, why } = reasonForErrno(err);
  return new StorageError(reason, `${job.what}: ${why}`, { cause: err });
}

async function attempt(job: ImportJob, temp: string): Promise<Omit<ImportOutcome, 'actualSize'>> {
  const controller = new AbortController();
  const stop = (): void => controller.abort(job.signal.reason);
  if (job.signal.aborted) stop();
  job.signal.addEventListener('abort', stop, { once: true });
  const signal = controller.signal;
  const digests = new Digests({ md5: job.md5, sha1: job.sha1 }, job.what);
  const progress = new Progress(job.log, { source: job.source.name }, job.clock ?? realClock, job.progress);
  const throttle = job.limitBytesPerSecond > 0 ? new Throttle(job.limitBytesPerSecond, job.clock) : undefined;
  let fetched = 0;
  const opened: Peeked[] = [];
  let staging: string | undefined;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of job.source.open(signal, progress)) {
      const behind = digests.update(chunk);
      if (behind) await behind;
      fetched += chunk.length;
      progress.add(chunk.length);
      if (throttle) await throttle.take(chunk.length, signal);
      yield chunk;
    }
  }
  try {
    const raw = await peek(counted(), COMPRESSION_MAGIC_BYTES);
    opened.push(raw);
    const compression = job.noDecompress ? undefined : sniffCompression(raw.head);
    let data: AsyncIterable<Buffer> = compression
      ? decompress(compression, raw.stream, { signal, what: job.what })
      : raw.stream;
    let sniffed: SniffedFormat = { kind: 'raw' };
    if (!job.plainFile) {
      const head = await peek(data, FORMAT_HEAD_BYTES);
      opened.push(head);
      sniffed = sniffFormat(head.head);
      refuseUnstorable(sniffed, job.convertTo, job.what);
      data = head.stream;
    }
    const convert = !job.plainFile && needsConversion(sniffed, job.convertTo);
    staging = convert ? tempNameBeside(job.destination) : undefined;
    const written = await writeFile(data, staging ?? temp, job.sparse);
    const { md5 } = await digests.verify(job.what);
    progress.done({ written, ...(compression ? { compression } : {}) });
    if (written === 0) throw new StorageError('BAD_IMAGE', `${job.what}: it is empty`);
    const stored = job.plainFile
      ? { format: 'raw' as const, virtualSize: written }
      : await storeImage(staging ?? temp, temp, {
          sniffed,
          convertTo: job.convertTo,
          sparse: job.sparse,
          signal,
          what: job.what,
          progress: job.progress,
        });
    return { ...stored, fetchedBytes: fetched, md5, compression, detected: sniffed.kind };
  } catch (err) {
    // Everything still reading (a download, a decompressor) stops before anything waits on it.
    controller.abort();
    for (const p of opened.reverse()) await p.close().catch(() => undefined);
    throw err;
  } finally {
    job.signal.removeEventListener('abort', stop);
    controller.abort();
    await digests.close();
    if (staging) await rm(staging, { force: true });
  }
}

async function writeFile(data: AsyncIterable<Buffer>, path: string, sparse: boolean): Promise<number> {
  const fh = await open(path, 'wx', DISK_FILE_MODE);
  try {
    return await writeSparse(data, fh, sparse);
  } finally {
    await fh.close();
  }
}
