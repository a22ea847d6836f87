import { StorageError } from '../../../common/src/errors.js';

/** What `qemu-img info --output=json` says of one file, each field checked. */
export interface InfoOutput {
  format: string;
  /** Size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on disk (0 when qemu-img cannot tell). */
  actualSize: number;
  /** The backing name as stored in the image; absent for a standalone image. */
  backingFilename?: string;
  /** That name resolved by qemu-img (relative names against the image's directory). */
  fullBackingFilename?: string;
  /** The backing format as stored; absent when none is recorded. */
  backingFormat?: string;
  /** qcow2's external data file, when it names one. */
  dataFile?: string;
  /** qcow2 persistent bitmaps, by name. */
  bitmaps: string[];
}

/**
 * The one parser of `qemu-img info --output=json`: TOOL_FAILED naming `what` when the output is not
 * JSON, or does not describe a `format` image with a size.
 */
export function parseInfo(stdout: string, format: string, what: string): InfoOutput {
  let o: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(stdout);
    o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  } catch {
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img info printed something that is not JSON`);
  }
  const virtualSize = o['virtual-size'];
  if (o['format'] !== format || typeof virtualSize !== 'number') {
    throw new StorageError(
      'TOOL_FAILED',
      `${what}: qemu-img info did not describe a ${format} image with a size`,
    );
  }
  const actualSize = o['actual-size'];
  const specific = o['format-specific'];
  const data = (
    typeof specific === 'object' && specific !== null
      ? (specific as Record<string, unknown>)['data']
      : undefined
  ) as Record<string, unknown> | undefined;
  const bitmaps = Array.isArray(data?.['bitmaps']) ? (data['bitmaps'] as unknown[]) : [];
  const info: InfoOutput = {
    format,
    virtualSize,
    actualSize: typeof actualSize === 'number' ? actualSize : 0,
    bitmaps: bitmaps.map((b) => {
      const name = typeof b === 'object' && b !== null ? (b as Record<string, unknown>)['name'] : undefined;
      if (typeof name !== 'string')
        throw new StorageError('TOOL_FAILED', `${what}: qemu-img info listed a bitmap without a name`);
      return name;
    }),
  };
  const text = (key: string): string | undefined => {
    const v = o[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const backingFilename = text('backing-filename');
  const fullBackingFilename = text('full-backing-filename');
  const backingFormat = text('backing-filename-format');
  if (backingFilename !== undefined) info.backingFilename = backingFilename;
  if (fullBackingFilename !== undefined) info.fullBackingFilename = fullBackingFilename;
  if (backingFormat !== undefined) info.backingFormat = backingFormat;
  if (data?.['data-file'] !== undefined) info.dataFile = String(data['data-file']);
  return info;
}
