/**
 * The single layer of compression an import undoes (docs/image-datastore.md#registering-an-image-cp-on-the-agent),
 * recognised by its magic bytes rather than by a MIME guess over the first lines, as OpenNebula's
 * downloader does.
 */
export type Compression = 'gzip' | 'bzip2' | 'xz';

const MAGICS: ReadonlyArray<[Compression, Buffer]> = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  // "BZh" then the block size digit 1-9.
  ['bzip2', Buffer.from('BZh', 'latin1')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];

/** Bytes needed to tell every compression apart. */
export const COMPRESSION_MAGIC_BYTES = 6;

/** The compression the first bytes of a stream announce, or undefined for none we undo. */
export function sniffCompression(head: Buffer): Compression | undefined {
  for (const [name, magic] of MAGICS) {
    if (head.length < magic.length || !head.subarray(0, magic.length).equals(magic)) continue;
    if (name === 'bzip2') {
      const level = head[3];
      if (level === undefined || level < 0x31 || level > 0x39) continue;
    }
    return name;
  }
  return undefined;
}
