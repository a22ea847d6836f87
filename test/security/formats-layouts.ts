import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { type AddressInfo, type Server, createServer } from 'node:net';
import { dirname } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

/**
 * Layouts a hostile guest (or a hostile image) can leave in a datastore, for the class-1 attack
 * tests: raw disks whose bytes are a qcow2 header, and qcow2 layers whose backing name
 * points where no layout may point. Built with the real qemu-img, as a guest's bytes would be.
 */

import { MIB } from '../../common/src/units.js';

export { MIB };
/** The byte the other VM's disk is filled with: an export that holds it leaked that disk. */
export const SECRET_BYTE = 0x43;

/** A raw disk full of SECRET_BYTE: the victim VM's data. */
export async function secretDisk(file: string, sizeMb = 1): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, Buffer.alloc(sizeMb * MIB, SECRET_BYTE));
}

/**
 * A qcow2 header naming `backing` (format `backingFormat`) written at `file`, the file then padded to
 * `sizeMb` MiB: as a raw disk, exactly the bytes a guest can write into its own disk. `-u` so qemu-img
 * never opens the backing name while building the attack.
 */
export async function qcow2Header(
  file: string,
  backing: string,
  opts: { backingFormat?: string; sizeMb?: number } = {},
): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await runTool('qemu-img', [
    'create',
    '-q',
    '-u',
    '-f',
    'qcow2',
    '-F',
    opts.backingFormat ?? 'raw',
    '-b',
    backing,
    file,
    `${opts.sizeMb ?? 1}M`,
  ]);
  if (opts.sizeMb !== undefined) await truncate(file, opts.sizeMb * MIB);
}

/** True when `file` holds SECRET_BYTE anywhere in its first MiB (the leak the attack aims at). */
export async function holdsSecret(file: string): Promise<boolean> {
  const bytes = await readFile(file);
  const run = Buffer.alloc(4096, SECRET_BYTE);
  return bytes.includes(run);
}

/** A loopback TCP listener counting every connection (each closed at once): qemu's nbd/http target. */
export async function connectionCounter(): Promise<{
  port: number;
  count: () => number;
  close: () => Promise<void>;
}> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    count: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Backing names that make qemu open a network connection to 127.0.0.1:port. */
export function networkBackings(port: number): Array<{ name: string; backing: string }> {
  return [
    {
      name: 'json: nbd',
      backing: `json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":"${port}"}}`,
    },
    { name: 'nbd://', backing: `nbd://127.0.0.1:${port}/x` },
    { name: 'http://', backing: `http://127.0.0.1:${port}/x` },
  ];
}
