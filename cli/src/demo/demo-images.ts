import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MIB } from '../../../common/src/units.js';
import { create, type ImageFormat } from '../../../agent/src/qemu/qemu-img.js';
import { qemuIo } from '../../../agent/src/qemu/qemu-io.js';

/** Writes `pattern` over `length` bytes at `offset` of an image with qemu-io (format-aware). */
export async function writePattern(
  file: string,
  format: ImageFormat,
  pattern: number,
  offset: number,
  length: number,
): Promise<void> {
  await qemuIo(file, [`write -P 0x${pattern.toString(16)} ${offset} ${length}`], {
    format,
    what: `write a pattern into ${file}`,
  });
}

/** Creates an image of `sizeMb` MiB holding `pattern` in its first MiB. */
export async function makeImage(
  file: string,
  format: ImageFormat,
  sizeMb: number,
  pattern: number,
): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await create(file, { format, sizeMb, what: `create ${file}` });
  await writePattern(file, format, pattern, 0, MIB);
}

/** Whether every byte of [offset, offset+length) of a raw file equals `pattern`. */
export async function rawHoldsPattern(
  file: string,
  pattern: number,
  offset: number,
  length: number,
): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return bytesRead === length && buf.every((b) => b === pattern);
  } finally {
    await fh.close();
  }
}

/** The MD5 of a file's bytes, in hex (what a user gives as IMAGE/TEMPLATE/MD5). */
export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export { MIB };
