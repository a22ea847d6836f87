// Security review, class 4 (docs/security.md#the-attack-tests): "nothing happens before validation". Every TM action that creates a directory,
// a link or a file is driven through the installed shims (as oned's one_tm runs them) with an
// argument the agents refuse or that names nothing; the call must fail in one line and every host's
// datastore tree must be exactly as it was: no new VM directory, no `.monitor` marker, no
// `.isofiles` staging directory, no `disk.N -> /etc/hostname`.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeImage } from '../../cli/src/demo/demo-images.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, ONED_VMS_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOneLineFailure } from '../support/assertions.js';
import { layout } from '../support/files.js';

const DS = ONED_DATASTORE_LOCATION;
const SYS = `${DS}/0`;
const IMG = `${DS}/1`;
/** A VM whose directory exists nowhere yet: every refused call must leave it so. */
const NEW_VM = 31;
/** A VM with a disk on host01 (for mv, mvds, cpds). */
const OLD_VM = 32;
const GOOD = `${IMG}/c0ffee00000000000000000000000001`;
const MISSING = `${IMG}/c0ffee000000000000000000000000ff`;
/** An image datastore entry planted as a link to a file outside the roots. */
const LINKED_OUT = `${IMG}/c0ffee000000000000000000000000ee`;

let stack: Stack;

/** Every host's datastore tree, as one comparable value. */
function trees(): Record<string, string[]> {
  return Object.fromEntries(Object.entries(stack.datastoreDirs).map(([host, dir]) => [host, layout(dir)]));
}

beforeAll(async () => {
  stack = await Stack.start();
  await makeImage(stack.localPath('frontend', GOOD), 'qcow2', 16, 0x31);
  // The same image on host01, where the shared-mode actions look for it.
  await makeImage(stack.localPath('host01', GOOD), 'qcow2', 16, 0x31);
  for (const host of ['frontend', 'host01'])
    await symlink('/etc/hostname', stack.localPath(host, LINKED_OUT));
  const oldDisk = stack.localPath('host01', `${SYS}/${OLD_VM}/disk.0`);
  await makeImage(oldDisk, 'qcow2', 16, 0x32);
  const contextSh = stack.localPath('frontend', `${ONED_VMS_LOCATION}/${NEW_VM}/context.sh`);
  await mkdir(dirname(contextSh), { recursive: true });
  await writeFile(contextSh, 'ONE=1\n');
  for (const [id, tmMad] of [
    [NEW_VM, 'grpc'],
    [OLD_VM, 'grpc'],
  ] as const) {
    await writeVmXml(stack.fixturesDir, {
      id,
      disks: [
        { diskId: 0, imageId: 5, source: GOOD, format: 'qcow2', tmMad, size: 16, originalSize: 16 },
        // A volatile disk whose FS the agents do not make.
        { diskId: 1, type: 'fs', format: 'raw', size: 16, attrs: { FS: 'ntfs-of-doom' } },
      ],
      history: [{ hostname: 'host01', dsId: 0, tmMad }],
    });
  }
});

/**
 * Back to the starting layout before each case, so that what one case left behind cannot hide what
 * the next one makes: only host01 has a system datastore (with OLD_VM's directory in it).
 */
beforeEach(async () => {
  for (const [host, dir] of Object.entries(stack.datastoreDirs)) {
    const sys = `${dir}/0`;
    if (host === 'host01') {
      for (const name of [`${NEW_VM}`, '.monitor', '.isofiles'])
        await rm(`${sys}/${name}`, { recursive: true, force: true });
    } else {
      await rm(sys, { recursive: true, force: true });
    }
    for (const ds of ['100', '104']) await rm(`${dir}/${ds}`, { recursive: true, force: true });
  }
});

afterAll(async () => {
  await stack?.stop();
});

const newDisk = (n: number): string => `host01:${SYS}/${NEW_VM}/disk.${n}`;
const oldDisk = `host01:${SYS}/${OLD_VM}/disk.0`;
const badSources: Array<[string, string, RegExp]> = [
  ['a .. source', `frontend:${IMG}/../../../../../../etc/hostname`, /\.\./],
  ['a source outside the roots', 'frontend:/etc/hostname', /\/etc\/hostname/],
  ['an unsafe source', `frontend:${IMG}/x;touch$IFS/tmp/pwned`, /(unsafe|character)/i],
  ['a source that does not exist', `frontend:${MISSING}`, /c0ffee0+ff/],
  ['an image entry linked to a file outside the roots', `frontend:${LINKED_OUT}`, /(etc\/hostname|outside)/],
];

const cases: Array<[string, string, string, string[], RegExp]> = [];
for (const [what, source, pattern] of badSources) {
  for (const [driver, action] of [
    ['grpc', 'clone'],
    ['grpc', 'ln'],
    ['grpc_qcow2', 'clone'],
    ['grpc_qcow2', 'ln'],
    ['grpc_qcow2', 'clone.ssh'],
    ['grpc_qcow2', 'ln.ssh'],
    ['grpc_qcow2', 'ln.grpc'],
  ] as const) {
    cases.push([
      `${driver} ${action}: ${what}`,
      driver,
      action,
      [source, newDisk(0), `${NEW_VM}`, '1'],
      pattern,
    ]);
  }
}
cases.push(
  [
    'grpc mkimage: an FS the agents do not make',
    'grpc',
    'mkimage',
    ['16', 'raw', newDisk(1), `${NEW_VM}`, '0'],
    /ntfs-of-doom/,
  ],
  [
    'grpc_qcow2 mkimage: an FS the agents do not make',
    'grpc_qcow2',
    'mkimage',
    ['16', 'raw', newDisk(1), `${NEW_VM}`, '0'],
    /ntfs-of-doom/,
  ],
  [
    // Passes every check, then fails in the agent (ext4 holds no 17 TiB file): what the agent made for
    // it (the VM directory) goes again.
    'grpc mkimage: a size the filesystem cannot hold',
    'grpc',
    'mkimage',
    [`${17 * 1024 * 1024}`, 'raw', newDisk(2), `${NEW_VM}`, '0'],
    /disk\.2/,
  ],
  [
    'grpc mkswap: a .. destination',
    'grpc',
    'mkswap',
    ['16', `host01:${SYS}/${NEW_VM}/../../../../../../tmp/disk.2`, `${NEW_VM}`, '0'],
    /\.\./,
  ],
  [
    'grpc context: a file outside the roots',
    'grpc',
    'context',
    ['/etc/shadow', newDisk(3), `${NEW_VM}`, '0'],
    /\/etc\/shadow/,
  ],
  [
    'grpc context: a destination outside the roots',
    'grpc',
    'context',
    [`${ONED_VMS_LOCATION}/${NEW_VM}/context.sh`, 'host01:/etc/disk.3', `${NEW_VM}`, '0'],
    /\/etc/,
  ],
  [
    'grpc context: a missing file',
    'grpc',
    'context',
    [`${ONED_VMS_LOCATION}/${NEW_VM}/missing.sh`, newDisk(3), `${NEW_VM}`, '0'],
    /missing\.sh/,
  ],
  [
    'grpc mv: a VM directory that exists nowhere',
    'grpc',
    'mv',
    [`host01:${SYS}/${NEW_VM}`, `host02:${SYS}/${NEW_VM}`, `${NEW_VM}`, '0'],
    /neither/,
  ],
  [
    'grpc mv: a .. source',
    'grpc',
    'mv',
    [`host01:${SYS}/../../../../../../etc`, `host02:${SYS}/${NEW_VM}`, `${NEW_VM}`, '0'],
    /\.\./,
  ],
  [
    'grpc_qcow2 mv: a .. destination',
    'grpc_qcow2',
    'mv',
    [`host01:${SYS}/${OLD_VM}`, `host01:${DS}/100/../../../../../../tmp/${OLD_VM}`, `${OLD_VM}`, '100'],
    /\.\./,
  ],
  [
    'grpc mvds: a SOURCE outside the roots',
    'grpc',
    'mvds',
    [oldDisk, '/etc/one-image', `${OLD_VM}`, '1'],
    /\/etc/,
  ],
  [
    'grpc mvds: a .. SOURCE',
    'grpc',
    'mvds',
    [oldDisk, `${IMG}/../../../../../../etc/one-image`, `${OLD_VM}`, '1'],
    /\.\./,
  ],
  [
    'grpc_qcow2 mvds.ssh: a SOURCE outside the roots',
    'grpc_qcow2',
    'mvds.ssh',
    [oldDisk, '/etc/one-image', `${OLD_VM}`, '1'],
    /\/etc/,
  ],
  [
    'grpc cpds: a .. SOURCE',
    'grpc',
    'cpds',
    [oldDisk, `${DS}/104/../../../../../../etc/one-image`, '-1', `${OLD_VM}`, '104'],
    /\.\./,
  ],
  [
    'grpc cpds: a disk that does not exist',
    'grpc',
    'cpds',
    [`host01:${SYS}/${NEW_VM}/disk.0`, `${DS}/104/c0ffee03`, '-1', `${NEW_VM}`, '104'],
    /disk\.0/,
  ],
  [
    'grpc_qcow2 cpds: a disk that does not exist',
    'grpc_qcow2',
    'cpds',
    [`host01:${SYS}/${NEW_VM}/disk.0`, `${DS}/104/c0ffee03`, '-1', `${NEW_VM}`, '104'],
    /disk\.0/,
  ],
  [
    'grpc_qcow2 cpds: a SOURCE outside the roots',
    'grpc_qcow2',
    'cpds',
    [oldDisk, '/etc/one-image', '-1', `${OLD_VM}`, '104'],
    /\/etc/,
  ],
);

describe('a refused TM call changes nothing on any host', () => {
  it.each(cases)('%s', async (_what, driver, action, args, pattern) => {
    const before = trees();
    const r = await runAction(stack.remotesDir, 'tm', driver, action, args);
    expectOneLineFailure(r, pattern);
    expect(trees()).toEqual(before);
  });
});
