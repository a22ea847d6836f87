import type { FileHandle } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { INHERITED_FD_PATH, runTool } from '../../../common/src/tools/run-tool.js';
import type { Extent } from '../qemu/image-map.js';
import { MIB } from '../../../common/src/units.js';

/** pwritev until every byte is down: a short write is retried, so a full disk surfaces as ENOSPC. */
export async function writeFully(fh: FileHandle, parts: Buffer[], position: number): Promise<void> {
  let rest = parts;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const left: Buffer[] = [];
    for (const p of rest) {
      if (skip >= p.length) skip -= p.length;
      else {
        left.push(skip > 0 ? p.subarray(skip) : p);
        skip = 0;
      }
    }
    rest = left;
  }
}

/**
 * SPARSE=no: allocate every block, as OpenNebula's tar without -S would. fallocate(1) reserves the
 * holes without touching the data (fast); where the filesystem cannot, the holes get real zeros.
 */
export async function fillHoles(fh: FileHandle, size: number, extents: readonly Extent[]): Promise<void> {
  if (size === 0) return;
  // fallocate(1) reaches this very file through the descriptor it inherits, whatever happens to its name.
  try {
    await runTool('fallocate', ['-l', String(size), INHERITED_FD_PATH], {
      what: 'allocate the received file (SPARSE=no)',
      fd: fh.fd,
    });
    return;
  } catch (err) {
    if (err instanceof StorageError && err.reason === 'NO_SPACE') throw err;
  }
  const zeros = Buffer.alloc(MIB);
  let at = 0;
  for (const [offset, length] of [...extents, [size, 0] as Extent]) {
    for (let p = at; p < offset; p += zeros.length)
      await writeFully(fh, [zeros.subarray(0, Math.min(zeros.length, offset - p))], p);
    at = offset + length;
  }
}
