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

/** Formats the agent writes (OpenNebula's DISK/FORMAT values for file-based datastores). */
export const IMAGE_FORMATS = ['raw', 'qcow2'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface CreateOptions extends QemuOptions {
  format: ImageFormat;
  /** Virtual size in MiB; omitted for an overlay, which takes its backing file's size. */
  sizeMb?: number;
  /** Backing name as it is stored in the overlay (relative names resolve against its directory). */
  backing?: string;
  backingFormat?: string;
  /** Allocate every block now (SPARSE=no): preallocation=falloc. */
  preallocate?: boolean;
}

/** `qemu-img create -q -f FMT [-b BACKING -F BFMT] [-o preallocation=falloc] PATH [<size>M]`. */
export async function create(path: string, opts: CreateOptions): Promise<void> {
  const args = ['create', '-q', '-f', opts.format];
  if (opts.backing !== undefined) args.push('-b', opts.backing, '-F', opts.backingFormat ?? 'qcow2');
  if (opts.preallocate) args.push('-o', 'preallocation=falloc');
  args.push(path);
  if (opts.sizeMb !== undefined) args.push(`${opts.sizeMb}M`);
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

export interface ConvertOptions extends QemuOptions {
  /** Source format; passed with -f so qemu-img does not probe. */
  sourceFormat?: string;
  format: ImageFormat;
  /** False writes every block (-S 0), so the copy is fully allocated. */
  sparse: boolean;
}

/**
 * `qemu-img convert -U [-f SRCFMT] -O FMT [-S 0] SOURCE DESTINATION`: a standalone image holding
 * what SOURCE's whole backing chain reads as. -U reads images a VM may hold.
 */
export async function convert(source: string, destination: string, opts: ConvertOptions): Promise<void> {
  const args = ['convert', '-q', '-U'];
  if (opts.sourceFormat !== undefined) args.push('-f', opts.sourceFormat);
  args.push('-O', opts.format);
  if (!opts.sparse) args.push('-S', '0');
  args.push(source, destination);
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

export interface RebaseOptions extends QemuOptions {
  /** New backing name as stored in the image; empty makes the image standalone. */
  backing: string;
  backingFormat?: string;
  /**
   * -u: only the stored backing name (and format) change, no data is copied. Right only when the
   * new name reads the same content as the old one (a snap dir copied under a new name).
   */
  unsafe?: boolean;
}

/**
 * Safe-mode (unless `unsafe`) `qemu-img rebase -q -f qcow2 -F BFMT -b BACKING PATH`: copies into PATH every
 * cluster whose content differs between the old and the new backing chain, then switches the
 * backing name. Interrupted half-way, PATH still reads the same through its old backing file.
 * No -U: it writes, and qemu's image lock must refuse an image a running VM still holds.
 */
export async function rebase(path: string, opts: RebaseOptions): Promise<void> {
  const args = ['rebase', '-q', ...(opts.unsafe ? ['-u'] : []), '-f', 'qcow2'];
  if (opts.backing !== '') args.push('-F', opts.backingFormat ?? 'qcow2');
  args.push('-b', opts.backing, path);
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

function toolOptions(opts: QemuOptions): { signal?: AbortSignal; what?: string } {
  return { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.what ? { what: opts.what } : {}) };
}
