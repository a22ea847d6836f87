import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { HOLE_BLOCK_BYTES } from './sparse-writer.js';

export interface FileHashes {
  /** Hex digests, one per algorithm asked for, in that order. */
  digests: string[];
  /** The bytes read (the file's length). */
  size: number;
  /** Bytes in blocks (HOLE_BLOCK_BYTES, aligned to the file) that hold something other than zeros. */
  dataBlockBytes: number;
}

/**
 * The worker's whole program (CommonJS, evaluated). It reads the descriptor it is given (threads
 * share the process's descriptors) from offset 0 to the end, 4 MiB at a time, and answers once
 * (after a `{ read }` message per read when asked for progress).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { fd, algorithms, block, progress } = workerData;
const hashes = algorithms.map((a) => createHash(a));
const buf = Buffer.allocUnsafe(1024 * block);
const zeros = Buffer.alloc(block);
let size = 0;
let dataBlockBytes = 0;
for (;;) {
  const n = readSync(fd, buf, 0, buf.length, size);
  if (n === 0) break;
  const got = buf.subarray(0, n);
  for (const h of hashes) h.update(got);
  for (let at = 0; at < n; at += block) {
    const b = got.subarray(at, at + block);
    if (!b.equals(zeros.subarray(0, b.length))) dataBlockBytes += block;
  }
  size += n;
  if (progress) parentPort.postMessage({ read: size });
}
parentPort.postMessage({ digests: hashes.map((h) => h.digest('hex')), size, dataBlockBytes });
`;

/**
 * Reads the open file `fh` whole in a worker thread: its digests and how many of its blocks hold
 * data, without the event loop touching a byte (an image received over the data path is kept as it
 * is: docs/image-datastore.md#registering-an-image-cp-on-the-agent). The handle must stay open
 * until this settles; an abort stops the worker (and rejects with the signal's reason).
 * `onRead` hears the bytes read so far, after every 4 MiB read (for CallContext.progress).
 */
export async function hashFile(
  fh: FileHandle,
  algorithms: readonly string[],
  signal: AbortSignal,
  onRead?: (bytes: number) => void,
): Promise<FileHashes> {
  signal.throwIfAborted();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fd: fh.fd, algorithms, block: HOLE_BLOCK_BYTES, progress: onRead !== undefined },
  });
  const stop = (): void => void worker.terminate();
  signal.addEventListener('abort', stop, { once: true });
  try {
    return await new Promise<FileHashes>((resolve, reject) => {
      worker.on('message', (m: FileHashes | { read: number }) => {
        if ('read' in m) onRead?.(m.read);
        else resolve(m);
      });
      worker.once('error', reject);
      worker.once('exit', () =>
        reject(signal.aborted ? signal.reason : new Error('the hashing worker stopped')),
      );
    });
  } finally {
    signal.removeEventListener('abort', stop);
    // Whatever happened, the worker no longer reads the descriptor once this returns.
    await worker.terminate();
  }
}
