// Security review, class 4 (docs/security.md#the-attack-tests): images the agent creates were 0644 under root's umask, readable by every local
// user. Everything the agent makes in a datastore now has the modes of agent/src/files/modes.ts
// and belongs to the agent's user, even when the agent runs as root (as today's stacks do).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, ONED_VMS_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { DIRECTORY_MODE, DISK_FILE_MODE } from '../../agent/src/files/modes.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOk } from '../support/assertions.js';
import { processIds } from '../support/test-user.js';

const VM = 61;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const IMAGE = `${ONED_DATASTORE_LOCATION}/1/61a1b2c3d4e5f60718293a4b5c6d7e8f`;
const CPDS = `${ONED_DATASTORE_LOCATION}/1/61cpds00000000000000000000000000`;
const LCM_POWEROFF_SNAPSHOT = 51;

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);
const local = (host: string, path: string): string => stack.localPath(host, path);
const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

/** The uid the agent of `host` runs as (what it creates must belong to it). */
function agentUid(host: string): number {
  const pid = stack.pids()[`agent-${host}`];
  if (pid === undefined) throw new Error(`no agent process for ${host}`);
  const uid = processIds(pid).uids[1];
  if (uid === undefined) throw new Error(`no Uid line for agent ${host} (pid ${pid})`);
  return uid;
}

function expectCreated(host: string, onedPath: string, mode: number): void {
  const st = statSync(local(host, onedPath));
  expect({ path: onedPath, mode: octal(st.mode), uid: st.uid }).toEqual({
    path: onedPath,
    mode: octal(mode),
    uid: agentUid(host),
  });
}

beforeAll(async () => {
  stack = await Stack.start();
  // The source as the image datastore holds it after the fix (the data path's modes are class 3's).
  await makeImage(local('frontend', IMAGE), 'qcow2', 32, 0x61);
  await chmod(local('frontend', IMAGE), DISK_FILE_MODE);
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    lcmState: LCM_POWEROFF_SNAPSHOT,
    disks: [
      { diskId: 0, imageId: 0, source: IMAGE, format: 'qcow2', tmMad: 'grpc', size: 32, originalSize: 32 },
    ],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
  await mkdir(local('frontend', `${ONED_VMS_LOCATION}/${VM}`), { recursive: true });
  await writeFile(local('frontend', `${ONED_VMS_LOCATION}/${VM}/context.sh`), "ETH0_IP='198.51.100.61'\n");
});

afterAll(async () => {
  await stack?.stop();
});

describe('files the agent creates are not world-readable and belong to the agent', () => {
  it('mkimage: the volatile disk is DISK_FILE_MODE and its new VM directory DIRECTORY_MODE', async () => {
    expectOk(await tm('mkimage', ['16', 'qcow2', `host01:${VM_DIR}/disk.2`, `${VM}`, '0']));
    expectCreated('host01', `${VM_DIR}/disk.2`, DISK_FILE_MODE);
    expectCreated('host01', VM_DIR, DIRECTORY_MODE);
  });

  it('mkswap and a raw mkimage', async () => {
    expectOk(await tm('mkswap', ['16', `host01:${VM_DIR}/disk.3`, `${VM}`, '0']));
    expectCreated('host01', `${VM_DIR}/disk.3`, DISK_FILE_MODE);
    expectOk(await tm('mkimage', ['16', 'raw', `host01:${VM_DIR}/disk.4`, `${VM}`, '0']));
    expectCreated('host01', `${VM_DIR}/disk.4`, DISK_FILE_MODE);
  });

  it('context: the ISO', async () => {
    const contextSh = `${ONED_VMS_LOCATION}/${VM}/context.sh`;
    expectOk(await tm('context', [contextSh, `host01:${VM_DIR}/disk.5`, `${VM}`, '0']));
    expectCreated('host01', `${VM_DIR}/disk.5`, DISK_FILE_MODE);
  });

  it('clone, snap_create and cpds: the copy, every snapshot file, the snapshot directory, the saved image', async () => {
    expectOk(await tm('clone', [`frontend:${IMAGE}`, `host01:${VM_DIR}/disk.0`, `${VM}`, '1']));
    expectCreated('host01', `${VM_DIR}/disk.0`, DISK_FILE_MODE);
    expectOk(await tm('snap_create', [`host01:${VM_DIR}/disk.0`, '0', `${VM}`, '1']));
    expectCreated('host01', `${VM_DIR}/disk.0.snap`, DIRECTORY_MODE);
    expectCreated('host01', `${VM_DIR}/disk.0.snap/0`, DISK_FILE_MODE);
    expectCreated('host01', `${VM_DIR}/disk.0.snap/1`, DISK_FILE_MODE);
    expectOk(await tm('cpds', [`host01:${VM_DIR}/disk.0`, CPDS, '0', `${VM}`, '1']));
    expectCreated('frontend', CPDS, DISK_FILE_MODE);
  });
});
