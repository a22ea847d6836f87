import { open } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';

/** qcow2's magic, "QFI\xfb" (docs/interop/qcow2.txt in qemu). */
export const QCOW2_MAGIC = 0x514649fb;
/** Header v3 is 104 bytes; v2 stops at 72. */
const HEADER_V3_LENGTH = 104;
const VERSION_OFFSET = 4;
const INCOMPATIBLE_FEATURES_OFFSET = 72;
/** Incompatible feature bit 2: the guest data lives in an external data file the header names. */
const EXTERNAL_DATA_FILE_BIT = 1n << 2n;

/**
 * Refuses a qcow2 file whose header asks qemu to open another file besides its backing file (an
 * external data file), before qemu-img reads it: qemu opens the data file as it opens the image, and
 * older qemu releases followed a `json:` data file name there. OpenNebula never creates one. Also
 * refuses a file that is not qcow2 version 2 or 3 (version 1 is qemu's older "qcow" driver).
 */
export async function checkQcow2Header(file: string, what: string): Promise<void> {
  let head: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      head = Buffer.alloc(HEADER_V3_LENGTH);
      const { bytesRead } = await fh.read(head, 0, HEADER_V3_LENGTH, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw asStorageError(err, what, 'reading the qcow2 header');
  }
  if (head.length < INCOMPATIBLE_FEATURES_OFFSET || head.readUInt32BE(0) !== QCOW2_MAGIC) {
    throw new StorageError('BAD_LAYOUT', `${what}: is not a qcow2 image, as its format says it is`);
  }
  const version = head.readUInt32BE(VERSION_OFFSET);
  if (version !== 2 && version !== 3) {
    throw new StorageError('BAD_LAYOUT', `${what}: qcow2 version ${version} is not supported (2 or 3)`);
  }
  if (version === 3 && head.length >= INCOMPATIBLE_FEATURES_OFFSET + 8) {
    const features = head.readBigUInt64BE(INCOMPATIBLE_FEATURES_OFFSET);
    if ((features & EXTERNAL_DATA_FILE_BIT) !== 0n) {
      throw new StorageError('BAD_LAYOUT', `${what}: names an external data file; refused`);
    }
  }
}
