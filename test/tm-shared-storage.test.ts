// Two hosts mounting the same storage (their agents' roots are one directory): a directory-level mv
// between them at the same path must notice (OpenNebula's mktemp probe) and move nothing, because
// copying then deleting the source would delete the only copy.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeImage } from '../cli/src/demo/demo-images.js';
import { runAction } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { layout, sha256File } from './support/files.js';

const VM = 11;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
let shared: string;
let stack: Stack;

beforeAll(async () => {
  shared = await mkdtemp(join(tmpdir(), 'one-storage-shared-'));
  await mkdir(join(shared, 'datastores'));
  const dir = join(shared, 'datastores');
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02'],
    hostDirs: { host01: dir, host02: dir },
  });
  await writeVmXml(stack.fixturesDir, { id: VM, history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }] });
  await makeImage(stack.localPath('host01', `${VM_DIR}/disk.0`), 'qcow2', 16, 0x61);
});

afterAll(async () => {
  await stack?.stop();
  await rm(shared, { recursive: true, force: true });
});

it('mv between two hosts on the same storage moves nothing and deletes nothing', async () => {
  const before = layout(stack.localPath('host01', VM_DIR));
  const sum = await sha256File(stack.localPath('host01', `${VM_DIR}/disk.0`));
  for (let i = 0; i < 3; i++) {
    const r = await runAction(stack.remotesDir, 'tm', 'grpc', 'mv', [
      `host01:${VM_DIR}`,
      `host02:${VM_DIR}`,
      `${VM}`,
      '0',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/INFO: mv: host01 and host02 share .*: nothing to move/);
    expect(layout(stack.localPath('host02', VM_DIR))).toEqual(before);
  }
  expect(await sha256File(stack.localPath('host02', `${VM_DIR}/disk.0`))).toBe(sum);
  // the probe file is gone
  expect(
    layout(stack.localPath('host02', `${ONED_DATASTORE_LOCATION}/0`)).filter((l) => l.includes('probe')),
  ).toEqual([]);
});
