import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Extent } from './extents.js';

/** Read size: large reads keep syscalls and frames few; a handful fit in L2-friendly memory. */
export const CHUNK_BYTES = 2 * 1024 * 1024;
/** Reads issued ahead of the one being sent, so the disk works while we hash and encrypt. */
const READ_AHEAD = 2;
/** Buffers per transfer: read-ahead, the one being hashed, and those the socket still holds. */
const POOL_BUFFERS = 8;

/** A fixed set of reusable buffers: no per-chunk allocation, and a bound on memory per transfer. */
class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];

  constructor(size: number, count: number) {
    for (let i = 0; i < count; i++) this.free.push(Buffer.allocUnsafeSlow(size));
  }

  acquire(): Promise<Buffer> {
    const b = this.free.pop();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.waiting.push(resolve));
  }

  release(b: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(b);
    else this.free.push(b);
  }
}

interface Piece {
  buf: Buffer;
  length: number;
}

/** Receives each chunk; must call `done` once it no longer needs the buffer. */
export type ChunkSink = (bytes: Buffer, done: () => void) => Promise<void>;

/**
 * Streams the data extents of one file through `sink`, reading ahead with pooled buffers, and
 * returns the SHA-256 of the data stream (the extents' bytes, in order). O_NOFOLLOW: the manifest
 * said this was a regular file; if it has since been swapped for a symlink we refuse, not follow.
 */
export class ExtentReader {
  private readonly pool = new BufferPool(CHUNK_BYTES, POOL_BUFFERS);

  async stream(path: string, extents: readonly Extent[], sink: ChunkSink): Promise<Buffer> {
    const hash = createHash('sha256');
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      if (!(await fh.stat()).isFile()) throw new Error(`${path} is no longer a regular file`);
      const plan = pieces(extents);
      const reads: Promise<Piece>[] = [];
      let next = 0;
      const refill = (): void => {
        while (reads.length < READ_AHEAD && next < plan.length) {
          const [pos, len] = plan[next++] as Extent;
          const p = this.read(fh, pos, len);
          // Rejections are handled when awaited; this keeps an early exit from leaving them unhandled.
          p.catch(() => undefined);
          reads.push(p);
        }
      };
      refill();
      for (let p = reads.shift(); p; p = reads.shift()) {
        const { buf, length } = await p;
        refill();
        const view = buf.subarray(0, length);
        hash.update(view);
        await sink(view, () => this.pool.release(buf));
      }
    } finally {
      await fh.close();
    }
    return hash.digest();
  }

  private async read(fh: FileHandle, position: number, length: number): Promise<Piece> {
    const buf = await this.pool.acquire();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0) {
        this.pool.release(buf);
        throw new Error(`file shrank while being sent (no data at offset ${position + done})`);
      }
      done += bytesRead;
    }
    return { buf, length };
  }
}

function pieces(extents: readonly Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const [offset, length] of extents) {
    for (let at = 0; at < length; at += CHUNK_BYTES)
      out.push([offset + at, Math.min(CHUNK_BYTES, length - at)]);
  }
  return out;
}
