import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';

export const QEMU_IMG = 'qemu-img';
/** qemu-img's "M" suffix is MiB, the unit oned uses for disk sizes. */
export const MIB = 1024 * 1024;
/** Format names qemu-img reports (raw, qcow2, vmdk...); anything else is not passed back to it. */
const FORMAT_NAME = /^[a-z0-9]+$/;

export interface ImageInfo {
  format: string;
  /** Size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on disk. */
  actualSize: number;
  backingFile?: string;
}

export interface QemuOptions {
  signal?: AbortSignal;
  /** For error messages: "resize host01:/var/lib/one/datastores/0/42/disk.0". */
  what?: string;
}

/**
 * `qemu-img info --output=json -U`: JSON rather than scraped text, and -U (force-share) so an image
 * a running VM holds locked can still be read (what it reads may lag until the guest flushes).
 */
export async function imageInfo(path: string, opts: QemuOptions = {}): Promise<ImageInfo> {
  const { stdout } = await runTool(QEMU_IMG, ['info', '--output=json', '-U', path], toolOptions(opts));
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    throw new StorageError(
      'TOOL_FAILED',
      `${opts.what ?? path}: qemu-img info printed something that is not JSON`,
    );
  }
  const format = json['format'];
  const virtualSize = json['virtual-size'];
  const actualSize = json['actual-size'];
  if (typeof format !== 'string' || !FORMAT_NAME.test(format) || typeof virtualSize !== 'number') {
    throw new StorageError(
      'TOOL_FAILED',
      `${opts.what ?? path}: qemu-img info did not report a format and a size`,
    );
  }
  const backing = json['full-backing-filename'] ?? json['backing-filename'];
  return {
    format,
    virtualSize,
    actualSize: typeof actualSize === 'number' ? actualSize : 0,
    ...(typeof backing === 'string' ? { backingFile: backing } : {}),
  };
}

export interface ResizeOptions extends QemuOptions {
  /** SPARSE=no in OpenNebula: allocate the new space now (--preallocation=falloc). */
  preallocate: boolean;
  /** The image's format; read with imageInfo when absent. Always passed with -f so qemu-img never probes. */
  format?: string;
}

/** `qemu-img resize -f FMT [--preallocation=falloc] PATH <sizeMb>M`. Grows only: no --shrink. */
export async function resize(path: string, sizeMb: number, opts: ResizeOptions): Promise<void> {
  const format = opts.format ?? (await imageInfo(path, opts)).format;
  const args = [
    'resize',
    '-f',
    format,
    ...(opts.preallocate ? ['--preallocation=falloc'] : []),
    path,
    `${sizeMb}M`,
  ];
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

function toolOptions(opts: QemuOptions): { signal?: AbortSignal; what?: string } {
  return { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.what ? { what: opts.what } : {}) };
}
