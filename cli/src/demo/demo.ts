import { closeSync, existsSync, openSync, readdirSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';

import { qemuIo } from '../../../agent/src/qemu/qemu-io.js';
import {
  writeDatastoreXml,
  writeImageXml,
  writeVmXml,
  type DatastoreFixture,
  type VmFixture,
} from './fake-oned/fixtures.js';
import { startFileServer } from './file-server.js';
import { registerImage, type RegisteredImage } from './register-image.js';
import { MIB, makeImage, rawHoldsPattern, writePattern } from './demo-images.js';
import { runAction } from './run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from './stack.js';

const VM_ID = 42;
const SYSTEM_DS = 0;
const IMAGE_DS = 1;
const TM = 'grpc';
const DS_MAD = 'grpc';
const IMAGE_DATASTORE: DatastoreFixture = {
  id: IMAGE_DS,
  name: 'default',
  type: 0,
  tmMad: TM,
  dsMad: DS_MAD,
};
/** The first bytes of every qcow2 file: "QFI\xfb". */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
const IMAGE_SIZE_MB = 64;
/** The non-persistent disk is grown at deployment: DISK SIZE > ORIGINAL_SIZE. */
const DISK0_SIZE_MB = 128;
const PATTERN = { image0: 0x11, image1: 0x22, vmWrite: 0x5a } as const;
const VM_WRITE_OFFSET = 4 * MIB;

type Print = (line: string) => void;

/**
 * The guide's example VM (two disks: a non-persistent qcow2 image and a persistent raw one). Its
 * images are first registered from an HTTP URL the demo serves, through the datastore `stat` and
 * `cp` shims; the fake oned then knows them by the SOURCE and FORMAT cp printed. The VM is then
 * driven through the installed shims exactly as one_tm calls them: CREATE, STOP, RESUME, MIGRATE
 * host01→host02, SHUTDOWN. Then checks that the images are where cp said, in the format it said,
 * that the persistent image holds what the "VM" wrote and that no VM directory is left in any
 * system datastore. Returns true when everything holds.
 */
export async function runDemoLifecycle(stack: Stack, print: Print): Promise<boolean> {
  const fe = stack.frontend;
  const [host01, host02] = Object.keys(stack.datastoreDirs).filter((h) => h !== fe);
  if (!host01 || !host02) throw new Error('the demo needs a front-end and two hosts');
  const [image0, image1] = await registerImages(stack, print);
  const source0 = image0.source;
  const source1 = image1.source;
  const images = { image0, image1 };
  await writeFixtures(stack, images, [host01]);
  print(
    `images: ${source0} (${image0.format}, non-persistent), ${source1} (${image1.format}, persistent) on ${fe}`,
  );

  const sys = (host: string): string => `${host}:${ONED_DATASTORE_LOCATION}/${SYSTEM_DS}/${VM_ID}`;
  const ok = { value: true };
  const tm = async (stage: string, action: string, args: string[]): Promise<void> => {
    const r = await runAction(stack.remotesDir, 'tm', TM, action, args);
    print(`[${stage}] ${action} ${args.join(' ')} → exit ${r.code} (${r.ms.toFixed(0)} ms)`);
    for (const line of r.stderr.trim().split('\n').filter(Boolean)) print(`    ${line}`);
    if (r.code !== 0) ok.value = false;
  };
  const moveAll = async (stage: string, from: string, to: string): Promise<void> => {
    await tm(stage, 'mv', [`${sys(from)}/disk.0`, `${sys(to)}/disk.0`, `${VM_ID}`, `${IMAGE_DS}`]);
    await tm(stage, 'mv', [`${sys(from)}/disk.1`, `${sys(to)}/disk.1`, `${VM_ID}`, `${IMAGE_DS}`]);
    await tm(stage, 'mv', [sys(from), sys(to), `${VM_ID}`, `${SYSTEM_DS}`]);
  };

  await tm('CREATE', 'clone', [`${fe}:${source0}`, `${sys(host01)}/disk.0`, `${VM_ID}`, `${IMAGE_DS}`]);
  await tm('CREATE', 'ln', [`${fe}:${source1}`, `${sys(host01)}/disk.1`, `${VM_ID}`, `${IMAGE_DS}`]);
  // The "VM" runs on host01 and writes into its persistent disk.
  const disk1OnHost01 = stack.localPath(host01, `${ONED_DATASTORE_LOCATION}/${SYSTEM_DS}/${VM_ID}/disk.1`);
  if (existsSync(disk1OnHost01))
    await writePattern(disk1OnHost01, 'raw', PATTERN.vmWrite, VM_WRITE_OFFSET, MIB);
  print(`VM ${VM_ID} wrote 1 MiB of 0x${PATTERN.vmWrite.toString(16)} at 4 MiB into disk.1 on ${host01}`);
  await moveAll('STOP', host01, fe);
  await moveAll('RESUME', fe, host01);
  await writeFixtures(stack, images, [host01, host01]);
  await moveAll('MIGRATE', host01, host02);
  await writeFixtures(stack, images, [host01, host01, host02]);
  await tm('SHUTDOWN', 'delete', [`${sys(host02)}/disk.0`, `${VM_ID}`, `${IMAGE_DS}`]);
  await tm('SHUTDOWN', 'mvds', [`${sys(host02)}/disk.1`, source1, `${VM_ID}`, `${IMAGE_DS}`]);
  await tm('SHUTDOWN', 'delete', [sys(host02), `${VM_ID}`, `${SYSTEM_DS}`]);

  const persistentFile = stack.localPath(fe, source1);
  const checks: Array<[string, boolean]> = [
    ['every driver call succeeded', ok.value],
    ...[image0, image1].map((image, id): [string, boolean] => [
      `image ${id} is at the SOURCE cp printed, in the FORMAT it printed (${image.format})`,
      storedFormatIs(stack.localPath(fe, image.source), image.format),
    ]),
    [
      `persistent image holds the VM's write (0x5a at 4 MiB)`,
      await rawHoldsPattern(persistentFile, PATTERN.vmWrite, VM_WRITE_OFFSET, MIB),
    ],
    [
      `persistent image keeps its original data (0x22 at 0)`,
      await rawHoldsPattern(persistentFile, PATTERN.image1, 0, MIB),
    ],
    [`non-persistent image unchanged`, await qcow2Holds(stack.localPath(fe, source0), PATTERN.image0)],
    ...Object.keys(stack.datastoreDirs).map((h): [string, boolean] => [
      `nothing left for VM ${VM_ID} in ${h}'s system datastore`,
      vmDirGone(stack, h),
    ]),
  ];
  for (const [what, holds] of checks) print(`${holds ? 'ok  ' : 'FAIL'} ${what}`);
  return checks.every(([, holds]) => holds);
}

function vmDirGone(stack: Stack, host: string): boolean {
  const dsDir = stack.localPath(host, `${ONED_DATASTORE_LOCATION}/${SYSTEM_DS}`);
  return !existsSync(dsDir) || !readdirSync(dsDir).includes(String(VM_ID));
}

async function qcow2Holds(file: string, pattern: number): Promise<boolean> {
  // qemu-io reports a pattern mismatch on stdout; qemuIo turns it into an error.
  return qemuIo(file, [`read -P 0x${pattern.toString(16)} 0 ${MIB}`], { readOnly: true }).then(
    () => true,
    () => false,
  );
}

/**
 * The example VM's images, made in a directory the demo serves over HTTP on loopback, then
 * registered in the image datastore through the `stat` and `cp` shims as oned registers
 * `oneimage create --path http://...` (docs/demo.md#registering-the-images).
 */
async function registerImages(stack: Stack, print: Print): Promise<[RegisteredImage, RegisteredImage]> {
  const served = join(stack.baseDir, 'http');
  const files = { alpine: join(served, 'alpine.qcow2'), data: join(served, 'data.raw') };
  await makeImage(files.alpine, 'qcow2', IMAGE_SIZE_MB, PATTERN.image0);
  await makeImage(files.data, 'raw', IMAGE_SIZE_MB, PATTERN.image1);
  const server = await startFileServer(served);
  print(`serving the images to register at ${server.url}/`);
  try {
    await writeDatastoreXml(stack.fixturesDir, IMAGE_DATASTORE);
    const register = (id: number, name: keyof typeof files, persistent: boolean): Promise<RegisteredImage> =>
      registerImage(
        stack.remotesDir,
        DS_MAD,
        IMAGE_DATASTORE,
        { id, name, url: `${server.url}/${basename(files[name])}`, file: files[name], persistent },
        print,
      );
    return [await register(0, 'alpine', false), await register(1, 'data', true)];
  } finally {
    await server.stop();
  }
}

/** Whether the file holds an image of `format`: qcow2 by its magic, raw when that magic is absent. */
function storedFormatIs(file: string, format: string): boolean {
  if (!existsSync(file)) return false;
  const head = Buffer.alloc(QCOW2_MAGIC.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const isQcow2 = head.equals(QCOW2_MAGIC);
  return format === 'qcow2' ? isQcow2 : format === 'raw' && !isQcow2;
}

async function writeFixtures(
  stack: Stack,
  images: { image0: RegisteredImage; image1: RegisteredImage },
  placements: string[],
): Promise<void> {
  const dir = stack.fixturesDir;
  const { image0, image1 } = images;
  const source0 = image0.source;
  const source1 = image1.source;
  await writeDatastoreXml(dir, { id: SYSTEM_DS, name: 'system', type: 1, tmMad: TM, dsMad: '-' });
  await writeDatastoreXml(dir, IMAGE_DATASTORE);
  // What oned stored from cp's answer (SOURCE, FORMAT) and STAT's size.
  await writeImageXml(dir, {
    id: 0,
    name: 'alpine',
    source: source0,
    format: image0.format,
    size: image0.sizeMb,
    datastoreId: IMAGE_DS,
  });
  await writeImageXml(dir, {
    id: 1,
    name: 'data',
    source: source1,
    format: image1.format,
    size: image1.sizeMb,
    persistent: true,
    datastoreId: IMAGE_DS,
  });
  const vm: VmFixture = {
    id: VM_ID,
    name: 'vm01',
    deployId: `one-${VM_ID}`,
    disks: [
      {
        diskId: 0,
        imageId: 0,
        source: source0,
        format: image0.format,
        tmMad: TM,
        size: DISK0_SIZE_MB,
        originalSize: image0.sizeMb,
      },
      {
        diskId: 1,
        imageId: 1,
        source: source1,
        format: image1.format,
        tmMad: TM,
        persistent: true,
        size: image1.sizeMb,
        originalSize: image1.sizeMb,
      },
    ],
    history: placements.map((hostname) => ({ hostname, dsId: SYSTEM_DS, tmMad: TM })),
  };
  await writeVmXml(dir, vm);
}
