import { runTool } from '../../../common/src/tools/run-tool.js';
import { StorageError } from '../../../common/src/errors.js';
import { QEMU_IMG } from '../qemu/qemu-img.js';
import { dirtyExtents, parseMap, splitExtents, unallocatedExtents } from '../qemu/image-map.js';
import { startNbdExport } from './nbd-server.js';

const QEMU_IO = 'qemu-io';
/** One qemu-io request at most this long: it allocates a buffer of the request's size. */
const MAX_REQUEST = 32 * 1024 * 1024;
/** Requests per qemu-io process (each is one argv entry). */
const REQUESTS_PER_PROCESS = 2_000;
/** Copying the changed blocks of a large disk takes a while; this only bounds a stuck tool. */
const COPY_TIMEOUT_MS = 6 * 60 * 60_000;

export interface CbtOptions {
  readonly what: string;
  readonly signal: AbortSignal;
}

/** Persistent bitmaps of a qcow2 file (`qemu-img info`: there is no `qemu-img bitmap --list`). */
export async function listBitmaps(file: string, o: CbtOptions): Promise<string[]> {
  const { stdout } = await runTool(QEMU_IMG, ['info', '--output=json', '-U', '-f', 'qcow2', file], o);
  const info = JSON.parse(stdout) as { 'format-specific'?: { data?: { bitmaps?: Array<{ name: string }> } } };
  return (info['format-specific']?.data?.bitmaps ?? []).map((b) => b.name);
}

export async function addBitmap(file: string, name: string, o: CbtOptions): Promise<void> {
  await runTool(QEMU_IMG, ['bitmap', '--add', '-f', 'qcow2', file, name], o);
}

export async function removeBitmap(file: string, name: string, o: CbtOptions): Promise<void> {
  await runTool(QEMU_IMG, ['bitmap', '--remove', '-f', 'qcow2', file, name], o);
}

/**
 * The clusters of a powered-off qcow2 disk changed since `bitmap` was added, copied into a new
 * qcow2 file `out` (whose backing name is then `backing`, for `qemu-img rebase -u` by a restore).
 * qemu-nbd exports the disk read-only with the bitmap; qemu-img map lists the dirty ranges; `out`
 * starts as a qcow2 over the NBD export and qemu-io reads each dirty range with copy-on-read, which
 * writes exactly those clusters into `out` (all-zero ones as zero clusters, so a range the guest
 * zeroed stays zero after a rebase onto the previous backup).
 */
export async function copyChangedBlocks(
  disk: string,
  bitmap: string,
  out: string,
  backing: string,
  o: CbtOptions,
): Promise<void> {
  const nbd = await startNbdExport(disk, bitmap, o.what, o.signal);
  try {
    const { stdout } = await runTool(
      QEMU_IMG,
      [
        'map',
        '--output=json',
        '--image-opts',
        `driver=nbd,server.type=unix,server.path=${nbd.socket},x-dirty-bitmap=qemu:dirty-bitmap:${bitmap}`,
      ],
      o,
    );
    const dirty = dirtyExtents(parseMap(stdout, o.what));
    await runTool(QEMU_IMG, ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', nbd.uri, out], o);
    await qemuIo(
      out,
      splitExtents(dirty, MAX_REQUEST).map((e) => `read -q ${e.start} ${e.length}`),
      ['-C'],
      o,
    );
  } finally {
    await nbd.stop();
  }
  await rebaseName(out, backing, o);
}

/**
 * Makes every unallocated range of a standalone qcow2 an explicit zero cluster (`write -z`): such a
 * file then reads the same whatever backing file a consumer gives it. Needed for a full backup
 * written where an increment was expected (a new chain), which a restore rebases onto the previous
 * increment: unallocated clusters would read that older data instead of zeroes.
 */
export async function makeZeroesExplicit(file: string, o: CbtOptions): Promise<void> {
  const { stdout } = await runTool(QEMU_IMG, ['map', '--output=json', '-f', 'qcow2', file], o);
  const holes = unallocatedExtents(parseMap(stdout, o.what));
  await qemuIo(
    file,
    splitExtents(holes, MAX_REQUEST).map((e) => `write -q -z ${e.start} ${e.length}`),
    [],
    o,
  );
}

/** Sets the stored backing name only (`rebase -u`); '' makes the file standalone. */
export async function rebaseName(file: string, backing: string, o: CbtOptions): Promise<void> {
  const args = [
    'rebase',
    '-q',
    '-u',
    '-f',
    'qcow2',
    ...(backing === '' ? [] : ['-F', 'qcow2']),
    '-b',
    backing,
    file,
  ];
  await runTool(QEMU_IMG, args, o);
}

async function qemuIo(
  file: string,
  commands: readonly string[],
  flags: readonly string[],
  o: CbtOptions,
): Promise<void> {
  for (let i = 0; i < commands.length; i += REQUESTS_PER_PROCESS) {
    const batch = commands.slice(i, i + REQUESTS_PER_PROCESS);
    const { stdout } = await runTool(
      QEMU_IO,
      [...flags, '-f', 'qcow2', file, ...batch.flatMap((c) => ['-c', c])],
      { ...o, timeoutMs: COPY_TIMEOUT_MS },
    );
    // qemu-io reports a failed request on stdout and still exits 0.
    if (/fail|error/i.test(stdout)) {
      throw new StorageError(
        'TOOL_FAILED',
        `${o.what}: ${QEMU_IO} failed: ${stdout.trim().split('\n')[0] ?? ''}`,
      );
    }
  }
}
