import { open } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { QCOW2_HEAD_BYTES, type Qcow2Backing, readQcow2Backing, readQcow2Head } from './qcow2-head.js';

export { QCOW2_MAGIC } from './qcow2-head.js';

/**
 * Refuses a qcow2 file whose header asks qemu to open another file besides its backing file (an
 * external data file, by feature bit or header extension), before qemu-img reads it: qemu opens
 * the data file as it opens the image, and older qemu releases followed a `json:` data file name
 * there. OpenNebula never creates one. Also refuses a file that is not qcow2 version 2 or 3
 * (version 1 is qemu's older "qcow" driver) and a header whose fields are impossible.
 */
export async function checkQcow2Header(file: string, what: string): Promise<void> {
  await readQcow2Layer(file, what);
}

/** A qcow2 layer as its header and the filesystem describe it: what `qemu-img info` would say. */
export interface Qcow2Layer extends Qcow2Backing {
  /** Size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on disk (st_blocks × 512, as qemu reports a file's actual size). */
  actualSize: number;
}

/**
 * checkQcow2Header's checks, and the layer's sizes and backing file read by our own code from the
 * same bytes, without starting `qemu-img info`: a chain of n layers is read in microseconds
 * instead of n processes (docs/live-operations.md#fewer-processes-per-step).
 */
export async function readQcow2Layer(file: string, what: string): Promise<Qcow2Layer> {
  let head: Buffer;
  let blocks: number;
  try {
    const fh = await open(file, 'r');
    try {
      head = Buffer.alloc(QCOW2_HEAD_BYTES);
      const { bytesRead } = await fh.read(head, 0, QCOW2_HEAD_BYTES, 0);
      head = head.subarray(0, bytesRead);
      blocks = (await fh.stat()).blocks;
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw asStorageError(err, what, 'reading the qcow2 header');
  }
  const header = readQcow2Head(head);
  if (header === undefined)
    throw new StorageError('BAD_LAYOUT', `${what}: is not a qcow2 image, as its format says it is`);
  if ('problem' in header) throw new StorageError('BAD_LAYOUT', `${what}: ${header.problem}`);
  if (header.externalDataFile)
    throw new StorageError('BAD_LAYOUT', `${what}: names an external data file; refused`);
  const backing = readQcow2Backing(head, header);
  if ('problem' in backing) throw new StorageError('BAD_LAYOUT', `${what}: ${backing.problem}`);
  return { ...backing, virtualSize: Number(header.virtualSize), actualSize: blocks * 512 };
}
