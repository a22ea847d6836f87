import { rm, stat } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import { WHOLE_DISK_TIMEOUT_MS } from '../../../common/src/tools/run-tool.js';
import { standaloneForeign } from '../qemu/foreign-image.js';
import type { InfoOutput } from '../qemu/info-output.js';
import type { Progress } from '../jobs/job-registry.js';
import { convert, describe, type ImageFormat } from '../qemu/qemu-img.js';
import type { SniffedFormat } from './format-sniff.js';

export interface StoreOptions {
  /** What was written: the sniffed format of `written` (plain files are raw). */
  sniffed: SniffedFormat;
  convertTo: ImageFormat | undefined;
  sparse: boolean;
  signal: AbortSignal;
  what: string;
  /** Where a conversion reports its progress (phase "converting"). */
  progress?: ((p: Progress) => void) | undefined;
}

/**
 * Turns the downloaded file `written` into the image to rename into place at `temp`, and says what
 * it is. A raw or qcow2 upload whose format is kept was written at `temp` itself; otherwise
 * `written` is a staging file, converted into `temp` with its format pinned (-f), after a foreign
 * one was shown standalone by qemu-img. A qcow2 is read back by qemu-img (format pinned) as a
 * second opinion on the header checks already made.
 */
export async function storeImage(
  written: string,
  temp: string,
  o: StoreOptions,
): Promise<{ format: ImageFormat; virtualSize: number }> {
  const tool = { what: o.what, signal: o.signal };
  const kind = o.sniffed.kind;
  if (kind === 'refused') throw new StorageError('BAD_IMAGE', `${o.what}: ${o.sniffed.why}`);
  let kept: InfoOutput | undefined;
  if (kind === 'qcow2') {
    const info = await describe(written, 'qcow2', tool);
    if (written === temp) kept = info;
    if (info.backingFilename !== undefined || info.dataFile !== undefined)
      throw new StorageError(
        'BAD_IMAGE',
        `${o.what}: the qcow2 names another file (a backing or data file): an uploaded image must be standalone`,
      );
  } else if (kind !== 'raw') {
    await standaloneForeign(written, kind, tool);
  }
  const to: ImageFormat = o.convertTo ?? (kind === 'qcow2' ? 'qcow2' : 'raw');
  if (written !== temp) {
    await convert(written, temp, {
      ...tool,
      sourceFormat: kind,
      format: to,
      sparse: o.sparse,
      timeoutMs: WHOLE_DISK_TIMEOUT_MS,
      progress: o.progress,
    });
    await rm(written, { force: true });
  }
  if (to === 'raw') return { format: 'raw', virtualSize: (await stat(temp)).size };
  // A qcow2 kept as written was described above: no second qemu-img info of the same file.
  return { format: 'qcow2', virtualSize: (kept ?? (await describe(temp, 'qcow2', tool))).virtualSize };
}

/** Whether the upload must be converted (written to a staging file first) rather than kept as written. */
export function needsConversion(sniffed: SniffedFormat, convertTo: ImageFormat | undefined): boolean {
  if (sniffed.kind === 'raw') return convertTo === 'qcow2';
  if (sniffed.kind === 'qcow2') return convertTo === 'raw';
  return sniffed.kind !== 'refused';
}
