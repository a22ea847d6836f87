import { open } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { QCOW2_MAGIC } from '../qemu/qcow2-header.js';

const MAGIC_LENGTH = 4;

/**
 * Refuses a raw image's snapshot copy that starts with qcow2's magic. OpenNebula's fs snap_revert
 * on the qcow2 TM replaces the newest copy of a raw image by a qcow2 overlay
 * (docs/image-datastore.md#snapshots-of-persistent-images): read as raw (IMAGE/FORMAT, never
 * probed), its bytes are a header, not the snapshot. The bytes only ever cause a refusal here; a
 * raw disk whose guest wrote a qcow2 image from its first sector is refused too (a known limit).
 */
export async function refuseQcow2InRawCopy(file: string, shown: string, what: string): Promise<void> {
  const fh = await open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(MAGIC_LENGTH);
    const { bytesRead } = await fh.read(head, 0, MAGIC_LENGTH, 0);
    head = head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  if (head.length === MAGIC_LENGTH && head.readUInt32BE(0) === QCOW2_MAGIC) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: ${shown} holds a qcow2 image but the image is raw; its content is not a snapshot (OpenNebula's fs snap_revert writes such a file)`,
    );
  }
}
