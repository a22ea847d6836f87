import type { FileHandle } from 'node:fs/promises';
import { BlockPool, type Block } from './block-pool.js';
import { type Extent, splitExtents } from '../qemu/image-map.js';
import type { StreamHasher } from './stream-hasher.js';
import { HEADER_BYTES } from './wire.js';

/**
 * Read size. 512 KiB: few syscalls and frames, yet a block stays cache-resident while it is hashed
 * and encrypted (AES-GCM runs about twice as fast on 256 KiB pieces as on 2 MiB ones here).
 */
export const CHUNK_BYTES = 512 * 1024;
/** Reads issued ahead of the one being sent, so the disk works while we encrypt and send. */
const READ_AHEAD = 4;
/** Blocks per transfer: read-ahead, those being hashed, and those the socket still holds (12 MiB). */
const POOL_BLOCKS = 24;

/**
 * Receives each chunk: its bytes are `block.buf[HEADER_BYTES, HEADER_BYTES + length)`, and the
 * first HEADER_BYTES are free for the frame header, so header and data go out as one buffer (a TLS
 * socket would otherwise copy a [header, data] pair into one). Must call `done` once it no longer
 * needs the block.
 */
export type ChunkSink = (block: Block, length: number, done: () => void) => Promise<void>;

interface Piece {
  block: Block;
  length: number;
}

/**
 * Streams the data extents of one open file through `sink`, reading ahead with pooled blocks, and
 * returns the SHA-256 of the data stream (the extents' bytes, in order), computed by `hasher`
 * alongside the sending. The caller opens the file (verified against OpenSend: verified-open.ts)
 * and closes it.
 */
export class ExtentReader {
  private readonly pool = new BlockPool(HEADER_BYTES + CHUNK_BYTES, POOL_BLOCKS);

  constructor(private readonly hasher: StreamHasher) {}

  async stream(fh: FileHandle, extents: readonly Extent[], sink: ChunkSink): Promise<Buffer> {
    const plan = splitExtents(extents, CHUNK_BYTES);
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
      const { block, length } = await p;
      refill();
      // Two users of the block: the hasher and the socket; it goes back to the pool after both.
      let users = 2;
      const release = (): void => {
        if (--users === 0) this.pool.release(block);
      };
      this.hasher.update(block, HEADER_BYTES, length, release);
      await sink(block, length, release);
    }
    return this.hasher.digest();
  }

  private async read(fh: FileHandle, position: number, length: number): Promise<Piece> {
    const block = await this.pool.acquire();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(block.buf, HEADER_BYTES + done, length - done, position + done);
      if (bytesRead === 0) {
        this.pool.release(block);
        throw new Error(`file shrank while being sent (no data at offset ${position + done})`);
      }
      done += bytesRead;
    }
    return { block, length };
  }
}
