import { runTool } from '../../../common/src/tools/run-tool.js';
import type { Progress } from '../jobs/job-registry.js';
import { ConvertProgress } from './convert-progress.js';
import type { ForeignFormat } from './foreign-image.js';
import { type MapEntry, parseMap } from './image-map.js';
import { type InfoOutput, parseInfo } from './info-output.js';

export const QEMU_IMG = 'qemu-img';

/**
 * Formats the agent reads and writes (OpenNebula's DISK/FORMAT values for file-based datastores):
 * every qemu tool is told one of these (-f, -F), never left to guess.
 */
export const IMAGE_FORMATS = ['raw', 'qcow2'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

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
  /** Bounds a stuck tool (run-tool.ts's default otherwise); long copies set more. */
  timeoutMs?: number;
}

/**
 * `qemu-img info -f FMT --output=json -U` of one file the agent itself has just written (a new
 * image, a converted copy): JSON rather than scraped text, -U (force-share) so an image a running VM
 * holds locked can still be read, and -f so qemu-img never guesses the format. Opens no backing
 * file. Images that come from elsewhere are read with readChain (safe-chain.ts), which validates.
 */
export async function imageInfo(
  path: string,
  format: ImageFormat,
  opts: QemuOptions = {},
): Promise<ImageInfo> {
  const info = await describe(path, format, opts);
  const backing = info.fullBackingFilename ?? info.backingFilename;
  return {
    format,
    virtualSize: info.virtualSize,
    actualSize: info.actualSize,
    ...(backing !== undefined ? { backingFile: backing } : {}),
  };
}

/**
 * `qemu-img info -f FMT --output=json -U PATH`, parsed by the one parser of its output
 * (info-output.ts). -U reads an image a running VM holds; no backing file is opened.
 */
export async function describe(
  path: string,
  format: ImageFormat,
  opts: QemuOptions = {},
): Promise<InfoOutput> {
  const { stdout } = await runTool(
    QEMU_IMG,
    ['info', '-f', format, '--output=json', '-U', path],
    toolOptions(opts),
  );
  return parseInfo(stdout, format, opts.what ?? path);
}

export interface ResizeOptions extends QemuOptions {
  /** SPARSE=no in OpenNebula: allocate the new space now (--preallocation=falloc). */
  preallocate: boolean;
  /** The image's format (as oned knows it): passed with -f so qemu-img never probes. */
  format: ImageFormat;
}

/** `qemu-img resize -f FMT [--preallocation=falloc] PATH <sizeMb>M`. Grows only: no --shrink. */
export async function resize(path: string, sizeMb: number, opts: ResizeOptions): Promise<void> {
  const args = [
    'resize',
    '-f',
    opts.format,
    ...(opts.preallocate ? ['--preallocation=falloc'] : []),
    path,
    `${sizeMb}M`,
  ];
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

/** A backing file as an overlay stores it: its name and its format, always together (-b NAME -F FMT). */
export interface Backing {
  /** As stored in the image (relative names resolve against its directory). */
  name: string;
  format: ImageFormat;
}

export interface CreateOptions extends QemuOptions {
  format: ImageFormat;
  /** Virtual size in MiB; omitted for an overlay, which takes its backing file's size. */
  sizeMb?: number;
  /** The overlay's backing file; absent for a standalone image. */
  backing?: Backing;
  /** Allocate every block now (SPARSE=no): preallocation=falloc. */
  preallocate?: boolean;
}

/** `qemu-img create -q -f FMT [-b BACKING -F BFMT] [-o preallocation=falloc] PATH [<size>M]`. */
export async function create(path: string, opts: CreateOptions): Promise<void> {
  const args = ['create', '-q', '-f', opts.format];
  if (opts.backing !== undefined) args.push('-b', opts.backing.name, '-F', opts.backing.format);
  if (opts.preallocate) args.push('-o', 'preallocation=falloc');
  args.push(path);
  if (opts.sizeMb !== undefined) args.push(`${opts.sizeMb}M`);
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

/** Progress of a whole-image qemu-img job (convert): run with -p, its figures read as they come. */
export interface ProgressOptions {
  /**
   * Where progress goes (CallContext.progress): each figure qemu-img prints reports
   * `fraction × progressTotal` bytes done under `progressPhase` (default "converting").
   */
  progress?: ((p: Progress) => void) | undefined;
  progressPhase?: string;
  /** The bytes the whole job stands for; default: the source's virtual size. */
  progressTotal?: number;
}

export interface ConvertOptions extends QemuOptions, ProgressOptions {
  /**
   * Source format; passed with -f so qemu-img does not probe. A foreign one only for an upload
   * that standaloneForeign (foreign-image.ts) has checked.
   */
  sourceFormat: ImageFormat | ForeignFormat;
  format: ImageFormat;
  /** False writes every block (-S 0), so the copy is fully allocated. */
  sparse: boolean;
  /** -m N: parallel coroutines (OpenNebula's backups use 4). */
  coroutines?: number;
}

/**
 * `qemu-img convert -U -f SRCFMT -O FMT [-m N] [-S 0] SOURCE DESTINATION`: a standalone image holding
 * what SOURCE's whole backing chain reads as. -U reads images a VM may hold. With `progress`, -p
 * replaces -q and its figures are read as they come (convert-progress.ts).
 */
export async function convert(source: string, destination: string, opts: ConvertOptions): Promise<void> {
  const report = opts.progress;
  const args = ['convert', report ? '-p' : '-q', '-U', '-f', opts.sourceFormat, '-O', opts.format];
  if (opts.coroutines !== undefined) args.push('-m', String(opts.coroutines));
  if (!opts.sparse) args.push('-S', '0');
  args.push(source, destination);
  if (!report) {
    await runTool(QEMU_IMG, args, toolOptions(opts));
    return;
  }
  const total = opts.progressTotal ?? (await virtualSizeOf(source, opts.sourceFormat, opts));
  const figures = new ConvertProgress(report, total, opts.progressPhase ?? 'converting');
  await runTool(QEMU_IMG, args, { ...toolOptions(opts), onStdout: (chunk) => figures.push(chunk) });
  figures.finish();
}

/** The virtual size of SOURCE as `qemu-img info -U -f FMT` reads it (any format convert reads). */
async function virtualSizeOf(source: string, format: string, opts: QemuOptions): Promise<number> {
  const { stdout } = await runTool(
    QEMU_IMG,
    ['info', '-f', format, '--output=json', '-U', source],
    toolOptions(opts),
  );
  return parseInfo(stdout, format, opts.what ?? source).virtualSize;
}

export interface RebaseOptions extends QemuOptions {
  /** The new backing file; undefined makes the image standalone. */
  backing: Backing | undefined;
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
  if (opts.backing !== undefined) args.push('-F', opts.backing.format, '-b', opts.backing.name);
  else args.push('-b', '');
  args.push(path);
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

/**
 * `qemu-img rebase -u` of an image a running QEMU holds open, past qemu's image lock
 * (`file.locking=off`): only the header's backing name and format are rewritten, nothing is read
 * or copied. For one caller only, live-snapshots/short-backing-name.ts, which says when that is
 * safe (a name swapped for an equivalent one, an image without persistent bitmaps).
 */
export async function renameBackingUnlocked(
  path: string,
  backing: { name: string; format: ImageFormat },
  opts: QemuOptions,
): Promise<void> {
  const image = `driver=qcow2,file.driver=file,file.filename=${path.replaceAll(',', ',,')},file.locking=off`;
  const args = ['rebase', '-q', '-u', '-F', backing.format, '-b', backing.name, '--image-opts', image];
  await runTool(QEMU_IMG, args, toolOptions(opts));
}

/** What `qemu-img map` reads: a file in a known format, or an image described by --image-opts. */
export type MapSource = { file: string; format: ImageFormat } | { imageOpts: string };

export interface MapOptions extends QemuOptions {
  /** -U: only metadata is read, so an image a running VM holds can be mapped. */
  forceShare?: boolean;
  /** A descriptor the tool inherits (run-tool.ts INHERITED_FD_PATH names it as `file`). */
  fd?: number;
}

/** `qemu-img map --output=json [-U] -f FMT FILE` (or `--image-opts OPTS`), parsed (image-map.ts). */
export async function map(source: MapSource, opts: MapOptions = {}): Promise<MapEntry[]> {
  const args = ['map', '--output=json', ...(opts.forceShare ? ['-U'] : [])];
  if ('imageOpts' in source) args.push('--image-opts', source.imageOpts);
  else args.push('-f', source.format, source.file);
  const { stdout } = await runTool(QEMU_IMG, args, {
    ...toolOptions(opts),
    ...(opts.fd !== undefined ? { fd: opts.fd } : {}),
  });
  return parseMap(stdout, opts.what ?? QEMU_IMG);
}

/** `qemu-img bitmap --add|--remove -f qcow2 FILE NAME`: a qcow2 persistent bitmap. */
export async function bitmap(
  file: string,
  change: 'add' | 'remove',
  name: string,
  opts: QemuOptions = {},
): Promise<void> {
  await runTool(QEMU_IMG, ['bitmap', `--${change}`, '-f', 'qcow2', file, name], toolOptions(opts));
}

function toolOptions(opts: QemuOptions): { signal?: AbortSignal; what?: string; timeoutMs?: number } {
  return {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.what ? { what: opts.what } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  };
}
