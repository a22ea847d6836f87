import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { parseInfo } from './info-output.js';
import { QEMU_IMG, type QemuOptions } from './qemu-img.js';

/**
 * Formats an upload may come in that the datastores do not store (docs/image-datastore.md#registering-an-image-cp-on-the-agent):
 * qemu-img converts them to raw or qcow2 (CONVERT=yes), always told which one it reads (-f).
 */
export const FOREIGN_FORMATS = ['vmdk', 'vdi', 'vhdx', 'vpc', 'qed'] as const;
export type ForeignFormat = (typeof FOREIGN_FORMATS)[number];

/**
 * `qemu-img info -f FMT --output=json FILE` of an upload in a foreign format, which must be
 * standalone before it is converted (a conversion reads the backing chain and every extent):
 * BAD_IMAGE when it names a backing file or a data file, or, for a VMDK, data in any file but
 * itself. qemu-img info opens no backing file; the agent's own header checks have already refused
 * the VMDK layouts whose extents live in other files before this runs.
 */
export async function standaloneForeign(
  file: string,
  format: ForeignFormat,
  opts: QemuOptions & { what: string },
): Promise<{ virtualSize: number }> {
  const { stdout } = await runTool(QEMU_IMG, ['info', '-f', format, '--output=json', file], {
    what: opts.what,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const info = parseInfo(stdout, format, opts.what);
  const backing = info.backingFilename ?? info.fullBackingFilename;
  if (backing !== undefined)
    throw new StorageError(
      'BAD_IMAGE',
      `${opts.what}: the ${format} image names a backing file (${JSON.stringify(backing)}): an uploaded image must be standalone`,
    );
  if (info.dataFile !== undefined)
    throw new StorageError(
      'BAD_IMAGE',
      `${opts.what}: the ${format} image names an external data file: refused`,
    );
  if (format === 'vmdk') {
    const files = vmdkExtentFiles(stdout);
    if (files.length !== 1 || files[0] !== file)
      throw new StorageError(
        'BAD_IMAGE',
        `${opts.what}: the VMDK keeps its data in ${files.length} extent file(s) (${files.map((f) => JSON.stringify(f)).join(', ')}), not in itself alone: upload a single-file VMDK`,
      );
  }
  return { virtualSize: info.virtualSize };
}

/** format-specific.data.extents[].filename of a VMDK's `qemu-img info --output=json`. */
function vmdkExtentFiles(stdout: string): string[] {
  const o = JSON.parse(stdout) as { 'format-specific'?: { data?: { extents?: unknown } } };
  const extents = o['format-specific']?.data?.extents;
  if (!Array.isArray(extents)) return [];
  return extents.map((e) => String((e as { filename?: unknown }).filename ?? ''));
}
