/**
 * The fields of a qcow2 header that decide whether qemu may open it, read from its first bytes by
 * our own code (docs/interop/qcow2.txt in qemu): an import's format sniff and the check of a chain's
 * qcow2 files before qemu-img reads them (qcow2-header.ts) both read them here.
 */
export interface Qcow2Head {
  version: number;
  /** Where the backing file's name is stored; 0 when the image has none. */
  backingFileOffset: bigint;
  virtualSize: bigint;
  clusterBits: number;
  /** Incompatible feature bits (version 3; 0 for version 2). */
  incompatibleFeatures: bigint;
  /** The header names an external data file (incompatible bit 2, or the data file name extension). */
  externalDataFile: boolean;
}

/** qcow2's magic, "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb;
/** Bytes read for the header and its extensions (they follow it in the first cluster; qemu's take a few hundred bytes). */
export const QCOW2_HEAD_BYTES = 64 * 1024;
/** Version 2 headers are 72 bytes; version 3 at least 104 and say how long they are. */
const V2_HEADER_BYTES = 72;
const V3_HEADER_BYTES = 104;
const EXTERNAL_DATA_FILE_BIT = 1n << 2n;
/** Header extension "data file name" (0x44415441). */
const DATA_FILE_EXTENSION = 0x44415441;
const END_OF_EXTENSIONS = 0;
/** qemu's own bounds on the cluster size: 512 B to 2 MiB. */
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;

/**
 * Parses the header at the start of `head`; undefined when `head` does not start with the qcow2
 * magic. A header too short, of an unknown version, or with impossible fields gives `problem`.
 */
export function readQcow2Head(head: Buffer): Qcow2Head | { problem: string } | undefined {
  if (head.length < 4 || head.readUInt32BE(0) !== QCOW2_MAGIC) return undefined;
  if (head.length < V2_HEADER_BYTES)
    return { problem: `its qcow2 header is cut short (${head.length} bytes)` };
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3)
    return { problem: `qcow2 version ${version} is not supported (2 or 3)` };
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS)
    return { problem: `its qcow2 header gives an impossible cluster size (2^${clusterBits})` };
  let incompatibleFeatures = 0n;
  let headerLength = V2_HEADER_BYTES;
  if (version === 3) {
    if (head.length < V3_HEADER_BYTES)
      return { problem: `its qcow2 header is cut short (${head.length} bytes)` };
    incompatibleFeatures = head.readBigUInt64BE(72);
    headerLength = head.readUInt32BE(100);
    if (headerLength < V3_HEADER_BYTES || headerLength % 8 !== 0)
      return { problem: `its qcow2 header length ${headerLength} is impossible` };
  }
  return {
    version,
    backingFileOffset: head.readBigUInt64BE(8),
    virtualSize: head.readBigUInt64BE(24),
    clusterBits,
    incompatibleFeatures,
    externalDataFile:
      (incompatibleFeatures & EXTERNAL_DATA_FILE_BIT) !== 0n || hasDataFileExtension(head, headerLength),
  };
}

/** Walks the header extensions (as far as `head` reaches) looking for a data file name. */
function hasDataFileExtension(head: Buffer, start: number): boolean {
  let at = start;
  while (at + 8 <= head.length) {
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === END_OF_EXTENSIONS) return false;
    if (type === DATA_FILE_EXTENSION) return true;
    at += 8 + Math.ceil(length / 8) * 8;
  }
  return false;
}

/** Header extension "backing file format name" (0xE2792ACA). */
const BACKING_FORMAT_EXTENSION = 0xe2792aca;
/** qemu's own limit on a stored backing file name. */
const MAX_BACKING_NAME_BYTES = 1023;
/** Incompatible feature bits qemu 7 knows: dirty, corrupt, external data file, compression type, extended L2. */
const KNOWN_INCOMPATIBLE_FEATURES = 0b11111n;

/** What a layer of a chain stores about its backing file, read from its header. */
export interface Qcow2Backing {
  /** The backing name as stored (relative names resolve against the image's directory); absent: none. */
  name?: string;
  /** The backing format extension's value, when the image has one. */
  format?: string;
}

/**
 * The backing name and format a parsed header stores (offset 8/16 and extension 0xE2792ACA), read
 * from `head` (the first QCOW2_HEAD_BYTES of the file), as `qemu-img info` reports them. A name
 * outside `head`, too long, or not UTF-8, and incompatible feature bits qemu does not know, give
 * `problem`: qemu would not open such an image either.
 */
export function readQcow2Backing(head: Buffer, h: Qcow2Head): Qcow2Backing | { problem: string } {
  if ((h.incompatibleFeatures & ~KNOWN_INCOMPATIBLE_FEATURES) !== 0n)
    return {
      problem: `its qcow2 header sets unknown incompatible features (0x${h.incompatibleFeatures.toString(16)})`,
    };
  const out: Qcow2Backing = {};
  if (h.backingFileOffset !== 0n) {
    const size = head.readUInt32BE(16);
    const offset = Number(h.backingFileOffset);
    if (size === 0 || size > MAX_BACKING_NAME_BYTES || offset + size > head.length)
      return {
        problem: `its qcow2 header stores an impossible backing file name (${size} bytes at ${offset})`,
      };
    const bytes = head.subarray(offset, offset + size);
    const name = bytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(bytes)) return { problem: 'its backing file name is not UTF-8' };
    out.name = name;
  }
  let at = h.version === 3 ? head.readUInt32BE(100) : V2_HEADER_BYTES;
  while (at + 8 <= head.length) {
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === END_OF_EXTENSIONS) break;
    if (type === BACKING_FORMAT_EXTENSION) {
      if (at + 8 + length > head.length) return { problem: 'its backing format extension is cut short' };
      out.format = head.subarray(at + 8, at + 8 + length).toString('latin1');
    }
    at += 8 + Math.ceil(length / 8) * 8;
  }
  return out;
}
