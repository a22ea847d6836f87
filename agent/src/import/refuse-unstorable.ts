import { StorageError } from '../../../common/src/errors.js';
import type { ImageFormat } from '../qemu/qemu-img.js';
import type { SniffedFormat } from './format-sniff.js';

/**
 * Refuses, from its first bytes alone, an upload that will not be stored (BAD_IMAGE), so the rest
 * is never downloaded: archives, LUKS volumes and other `refused` kinds; a qcow2 that names a
 * backing file or an external data file (qemu would open those files, on this host, for whoever
 * uses the image); a foreign format (vmdk, vdi, vhdx, vpc, qed) unless it is to be converted
 * (docs/image-datastore.md#registering-an-image-cp-on-the-agent).
 */
export function refuseUnstorable(
  sniffed: SniffedFormat,
  convertTo: ImageFormat | undefined,
  what: string,
): void {
  switch (sniffed.kind) {
    case 'raw':
      return;
    case 'refused':
      throw new StorageError('BAD_IMAGE', `${what}: ${sniffed.why}`);
    case 'qcow2':
      if (sniffed.header.backingFileOffset !== 0n)
        throw new StorageError(
          'BAD_IMAGE',
          `${what}: the qcow2 names a backing file: an uploaded image must be standalone`,
        );
      if (sniffed.header.externalDataFile)
        throw new StorageError('BAD_IMAGE', `${what}: the qcow2 names an external data file: refused`);
      return;
    default:
      if (convertTo === undefined)
        throw new StorageError(
          'BAD_IMAGE',
          `${what}: it is a ${sniffed.kind} image, which is stored only converted (set CONVERT=yes and DRIVER=raw or qcow2 on the datastore)`,
        );
  }
}
