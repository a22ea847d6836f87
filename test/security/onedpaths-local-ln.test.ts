// Security review, class 6 (docs/security.md#the-attack-tests): local-mode ln (TM grpc) of a persistent image whose SOURCE is itself a symlink,
// the layout OpenNebula's local `mvds` leaves: `SOURCE -> <hash>.snap/N`, the chain in SOURCE.snap
// with bare backing names. OpenNebula's local driver copies the snap dir and relinks
// `disk.N -> disk.N.snap/<basename of the link target>`; a disk that does not open is never a success.
import { readlinkSync, symlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOk, holdsPattern } from '../support/assertions.js';

const VM = 95;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const HASH = 'onedpathslocal000000000000000000';
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/${HASH}`;

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const on = (host: string, path: string): string => stack.localPath(host, path);

beforeAll(async () => {
  stack = await Stack.start();
  // SOURCE.snap/0 standalone, /1 an overlay on it named bare (tm/local's style), SOURCE -> .snap/1.
  const snap = `${on('frontend', SOURCE)}.snap`;
  await makeImage(`${snap}/0`, 'qcow2', 16, 0x21);
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', '0', `${snap}/1`]);
  await writePattern(`${snap}/1`, 'qcow2', 0x22, MIB, MIB);
  symlinkSync(`${HASH}.snap/1`, on('frontend', SOURCE));
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    disks: [
      { diskId: 0, imageId: 0, source: SOURCE, format: 'qcow2', tmMad: 'grpc', persistent: true, size: 16 },
    ],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('local ln of a SOURCE that links into its own snap dir', () => {
  it('relinks disk.N into the copied snap dir, and the disk opens with the image content', async () => {
    for (let i = 0; i < 2; i++) {
      expectOk(await tm('ln', [`frontend:${SOURCE}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    }
    const disk = on('host01', `${VM_DIR}/disk.0`);
    expect(readlinkSync(disk)).toBe('disk.0.snap/1');
    // Opened as libvirt opens it: through disk.0, from the VM directory.
    await runTool('qemu-img', ['info', '-U', '--backing-chain', disk]);
    expect(await holdsPattern(disk, 0x21)).toBe(true);
    expect(await holdsPattern(disk, 0x22, MIB)).toBe(true);
  });

  it('a SOURCE link whose target was not copied is an error, never a dangling disk', async () => {
    const other = `${ONED_DATASTORE_LOCATION}/1/onedpathsdangling0000000000000000`;
    symlinkSync('onedpathsdangling0000000000000000.snap/4', on('frontend', other));
    await writeVmXml(stack.fixturesDir, {
      id: VM,
      disks: [
        { diskId: 1, imageId: 1, source: other, format: 'qcow2', tmMad: 'grpc', persistent: true, size: 16 },
      ],
      history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    });
    const r = await tm('ln', [`frontend:${other}`, `host01:${VM_DIR}/disk.1`, `${VM}`, '1']);
    expect(r.code).not.toBe(0);
    expect(() => readlinkSync(on('host01', `${VM_DIR}/disk.1`))).toThrow();
  });
});
