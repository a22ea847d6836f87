import type { ForeignFormat } from '../qemu/foreign-image.js';
import { type Qcow2Head, readQcow2Head } from '../qemu/qcow2-head.js';

/** What the first bytes of an upload say it is. */
export type SniffedFormat =
  | { kind: 'raw' }
  | { kind: 'qcow2'; header: Qcow2Head }
  /** `virtualSize` when the header gives it in a fixed place (every one but vhdx). */
  | { kind: ForeignFormat; virtualSize?: bigint }
  /** Never stored: an archive, a LUKS volume, an empty file, a header that names other files. */
  | { kind: 'refused'; why: string };

/** Bytes read before deciding: the qcow2 header and its extensions, a VMDK's embedded descriptor. */
export const FORMAT_HEAD_BYTES = 64 * 1024;

const SECTOR = 512n;
/** VDI's signature, at 0x40 (little-endian). */
const VDI_SIGNATURE = 0xbeda107f;
const at = (head: Buffer, offset: number, text: string): boolean =>
  head.length >= offset + text.length && head.toString('latin1', offset, offset + text.length) === text;

/**
 * The one place where an upload's bytes decide its format (docs/image-datastore.md#registering-an-image-cp-on-the-agent):
 * magic numbers and header fields read by our own code, never qemu-img's probing. Anything not
 * recognised is raw (an ISO image is raw). From here on the format is pinned (-f) for every tool.
 */
export function sniffFormat(head: Buffer): SniffedFormat {
  if (head.length === 0) return { kind: 'refused', why: 'it is empty' };
  const qcow2 = readQcow2Head(head);
  if (qcow2 !== undefined)
    return 'problem' in qcow2 ? refused(qcow2.problem) : { kind: 'qcow2', header: qcow2 };
  if (at(head, 0, 'LUKS\xba\xbe')) return refused('it is a LUKS encrypted volume');
  if (at(head, 257, 'ustar')) return refused('it is a tar archive: archives are not supported');
  if (at(head, 0, 'PK\x03\x04') || at(head, 0, 'PK\x05\x06'))
    return refused('it is a zip archive: archives are not supported');
  if (at(head, 0, 'KDMV')) return vmdkSparse(head);
  if (at(head, 0, 'COWD')) return { kind: 'vmdk' };
  if (at(head, 0, '# Disk DescriptorFile'))
    return refused('it is a VMDK descriptor, which names its data in other files; upload a single-file VMDK');
  if (at(head, 0, 'QED\0')) return qed(head);
  if (at(head, 0, 'vhdxfile')) return { kind: 'vhdx' };
  if (at(head, 0, 'conectix')) return vpc(head);
  if (head.length >= 0x48 && head.readUInt32LE(0x40) === VDI_SIGNATURE) return vdi(head);
  return { kind: 'raw' };
}

const refused = (why: string): SniffedFormat => ({ kind: 'refused', why });

/** A hosted sparse extent ("KDMV"): capacity in sectors at 12, its descriptor at 28 (sectors). */
function vmdkSparse(head: Buffer): SniffedFormat {
  if (head.length < 44) return refused('its VMDK header is cut short');
  const capacity = head.readBigUInt64LE(12);
  const descriptorOffset = Number(head.readBigUInt64LE(28)) * 512;
  const descriptorSize = Number(head.readBigUInt64LE(36)) * 512;
  // With no capacity of its own, qemu takes the embedded descriptor's extents: other files.
  if (capacity === 0n) return refused('its VMDK header defers to a descriptor that names other files');
  if (descriptorOffset > 0 && descriptorOffset < head.length) {
    const text = head.toString(
      'latin1',
      descriptorOffset,
      Math.min(head.length, descriptorOffset + descriptorSize),
    );
    if (/parentFileNameHint/i.test(text))
      return refused('the VMDK names a parent (backing) file: an uploaded image must be standalone');
  }
  return { kind: 'vmdk', virtualSize: capacity * SECTOR };
}

/** QED: features at 16 (bit 0: a backing file), image size at 48. */
function qed(head: Buffer): SniffedFormat {
  if (head.length < 64) return refused('its QED header is cut short');
  const QED_BACKING_FILE = 1n;
  if ((head.readBigUInt64LE(16) & QED_BACKING_FILE) !== 0n)
    return refused('the QED image names a backing file: an uploaded image must be standalone');
  return { kind: 'qed', virtualSize: head.readBigUInt64LE(48) };
}

/** A dynamic VHD starts with a copy of its footer: current size at 48, disk type at 60 (big-endian). */
function vpc(head: Buffer): SniffedFormat {
  if (head.length < 64) return refused('its VHD footer is cut short');
  const DIFFERENCING = 4;
  if (head.readUInt32BE(60) === DIFFERENCING)
    return refused('it is a differencing VHD, which needs its parent: an uploaded image must be standalone');
  return { kind: 'vpc', virtualSize: head.readBigUInt64BE(48) };
}

/** VDI: signature at 0x40, image type at 0x4c, disk size at 0x170 (little-endian). */
function vdi(head: Buffer): SniffedFormat {
  if (head.length < 0x178) return refused('its VDI header is cut short');
  const DIFFERENCING = 4;
  if (head.readUInt32LE(0x4c) === DIFFERENCING)
    return refused('it is a differencing VDI, which needs its parent: an uploaded image must be standalone');
  return { kind: 'vdi', virtualSize: head.readBigUInt64LE(0x170) };
}
