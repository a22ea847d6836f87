// Reads the shim's stdin the way oned's scripts do with `cat -`: everything up to end of file. TM
// actions get no stdin (a closed pipe or /dev/null: end of file at once), DS actions and the
// migrate/backup hooks get base64 or raw XML. A terminal is never read, so a person running a shim
// by hand is not left waiting.
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';

const STDIN_FD = 0;
/** One pipe buffer's worth on Linux: a pipe read never returns more. */
const READ_CHUNK_BYTES = 64 * 1024;

/** All of stdin, or nothing when stdin is a terminal or closed. */
export async function readStdin(): Promise<Buffer> {
  if (isatty(STDIN_FD)) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for (;;) {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let read: number;
    try {
      // Synchronous reads: the shim has nothing else to do meanwhile, and they avoid setting up
      // process.stdin's stream machinery on every start.
      read = readSync(STDIN_FD, chunk, 0, chunk.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A pipe a parent left non-blocking has no data yet: wait for the rest the asynchronous way.
      if (code === 'EAGAIN') {
        chunks.push(await readStream(process.stdin));
        break;
      }
      // stdin closed outright: nothing to read, as with /dev/null.
      if (code === 'EBADF') break;
      throw err;
    }
    if (read === 0) break;
    chunks.push(chunk.subarray(0, read));
  }
  return Buffer.concat(chunks);
}

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
