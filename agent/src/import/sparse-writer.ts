import type { FileHandle } from 'node:fs/promises';
import { writeFully } from '../transfer/write-fully.js';

/** Holes are dug at this granularity: the page size, and every common filesystem's block size. */
export const HOLE_BLOCK_BYTES = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK_BYTES);

/**
 * Writes a stream into `fh` from offset 0. With `sparse`, blocks that hold only zeros are skipped
 * (the file is then truncated to its full length), so they stay holes: what OpenNebula gets from
 * `fallocate -d` after the copy, without writing the zeros first. Blocks are aligned to the file,
 * whatever sizes the chunks come in (a block split between two chunks is put together first).
 * Without `sparse` (SPARSE=no) every byte is written, so every block is allocated. Returns the
 * bytes the stream held.
 */
export async function writeSparse(
  input: AsyncIterable<Buffer>,
  fh: FileHandle,
  sparse: boolean,
): Promise<number> {
  let offset = 0;
  if (!sparse) {
    for await (const chunk of input) {
      await writeFully(fh, [chunk], offset);
      offset += chunk.length;
    }
    return offset;
  }
  /** The start of a block not yet complete (always at a block-aligned offset of the file). */
  let carry = Buffer.alloc(0);
  for await (const chunk of input) {
    let data = chunk;
    if (carry.length > 0) {
      const need = HOLE_BLOCK_BYTES - carry.length;
      if (data.length < need) {
        carry = Buffer.concat([carry, data]);
        continue;
      }
      await writeBlocks(fh, Buffer.concat([carry, data.subarray(0, need)]), offset);
      offset += HOLE_BLOCK_BYTES;
      data = data.subarray(need);
    }
    const whole = data.length - (data.length % HOLE_BLOCK_BYTES);
    await writeBlocks(fh, data.subarray(0, whole), offset);
    offset += whole;
    carry = Buffer.from(data.subarray(whole));
  }
  if (carry.length > 0 && carry.some((b) => b !== 0)) await writeFully(fh, [carry], offset);
  offset += carry.length;
  await fh.truncate(offset);
  return offset;
}

/** Writes the runs of whole blocks of `data` (at block-aligned `offset`) that are not all zeros. */
async function writeBlocks(fh: FileHandle, data: Buffer, offset: number): Promise<void> {
  let runStart = -1;
  for (let at = 0; at < data.length; at += HOLE_BLOCK_BYTES) {
    const zero = data.subarray(at, at + HOLE_BLOCK_BYTES).equals(ZEROS);
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      await writeFully(fh, [data.subarray(runStart, at)], offset + runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) await writeFully(fh, [data.subarray(runStart)], offset + runStart);
}
