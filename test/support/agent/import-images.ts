/**
 * Images to register, made by the real tools (qemu-img, qemu-io, gzip, bzip2, xz) as an operator's
 * would be: for the image registration tests of the agent and the coordinator.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImportImageRequest } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { MIB, qemuImg, writePattern } from './disk-testing.js';

export type Compression = 'gzip' | 'bzip2' | 'xz';

/** `bytes` compressed by the real tool (`gzip -c`, `bzip2 -c`, `xz -c`). */
export function compressed(kind: Compression, bytes: Buffer): Buffer {
  return execFileSync(kind, ['-c'], { input: bytes, maxBuffer: 256 * MIB });
}

/** A raw disk of `mib` MiB: a pattern in its first 256 KiB and at 2 MiB, zeros elsewhere. */
export function rawDisk(mib = 4): Buffer {
  const b = Buffer.alloc(mib * MIB);
  for (let i = 0; i < 256 * 1024; i++) b[i] = (i * 7 + 3) & 0xff;
  b.fill(0x5a, 2 * MIB, 2 * MIB + 64 * 1024);
  return b;
}

/**
 * `dir/name`: a qcow2 of `mib` MiB (qemu-img create) with data written by qemu-io at 0 and 1 MiB;
 * `args` are extra `qemu-img create` options (-b/-F for a backing file, -o data_file=...).
 */
export async function qcow2Disk(dir: string, name: string, mib = 4, ...args: string[]): Promise<string> {
  const file = join(dir, name);
  await qemuImg('create', '-q', '-f', 'qcow2', ...args, file, ...(args.includes('-b') ? [] : [`${mib}M`]));
  await writePattern(file, 'qcow2', 0x11, 0, 256 * 1024);
  await writePattern(file, 'qcow2', 0x22, MIB, 128 * 1024);
  return file;
}

/** `dir/name` in `format` (vmdk, vdi...), converted by qemu-img from `source` (in `sourceFormat`). */
export async function convertedDisk(
  dir: string,
  source: string,
  sourceFormat: 'raw' | 'qcow2',
  name: string,
  format: string,
): Promise<string> {
  const file = join(dir, name);
  await qemuImg('convert', '-q', '-f', sourceFormat, '-O', format, source, file);
  return file;
}

export const bytesOf = (file: string): Buffer => readFileSync(file);

/**
 * An ImportImageRequest as the coordinator's cp sends it for an image with no checksum, no
 * conversion and SPARSE unset (sparse); `req` names the destination, the source and what differs.
 */
export const importRequest = (req: Partial<ImportImageRequest>): ImportImageRequest =>
  ImportImageRequest.fromPartial({ sparse: true, label: 'image 7', ...req });
