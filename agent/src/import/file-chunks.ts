import type { FileHandle } from 'node:fs/promises';

/** Read size for local sources: large enough that syscalls cost nothing next to the disk. */
const CHUNK_BYTES = 1024 * 1024;

/**
 * The bytes of an open file from its start, chunk by chunk; stops at the end of the file or when
 * `signal` aborts (the caller closes the handle).
 */
export async function* fileChunks(fh: FileHandle, signal: AbortSignal): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    signal.throwIfAborted();
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    const { bytesRead } = await fh.read(buffer, 0, CHUNK_BYTES, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}
