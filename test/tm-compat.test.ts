// Switching drivers: VM directories laid out by OpenNebula's own drivers (built here with qemu-img
// exactly as docs/opennebula/snapshots.md#qcow2-layout and docs/opennebula/tm-actions.md#local describe) keep working with our snapshot, cpds, mv and delete
// actions, driven through the shims.
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { layout } from './support/files.js';
import { expectOk, holdsPattern } from './support/assertions.js';

const SYS = `${ONED_DATASTORE_LOCATION}/0`;
const IMG_DS = `${ONED_DATASTORE_LOCATION}/1`;
const LCM_POWEROFF_SNAPSHOT = 51;

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);

/**
 * disk.0 → disk.0.snap/2 with snapshots 0 and 1 holding 0xa0 and 0xb1 and the active layer 0xc2.
 * "relative": backing names `disk.0.snap/K` and the self link (OpenNebula's qcow2/shared);
 * "bare": backing names `K` written from inside the snap dir (OpenNebula's tm/local).
 */
async function openNebulaLayout(vmDir: string, style: 'relative' | 'bare'): Promise<string> {
  const snap = join(vmDir, 'disk.0.snap');
  await mkdir(snap, { recursive: true });
  await makeImage(join(snap, '0'), 'qcow2', 16, 0xa0);
  await symlink('.', join(snap, 'disk.0.snap'));
  for (const k of [1, 2]) {
    const backing = style === 'relative' ? `disk.0.snap/${k - 1}` : `${k - 1}`;
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, String(k)], {
      cwd: snap,
    });
  }
  await symlink('disk.0.snap/2', join(vmDir, 'disk.0'));
  // write through the snap dir (where both naming styles resolve)
  await writePattern(join(snap, '1'), 'qcow2', 0xb1, 0, MIB);
  await writePattern(join(snap, '2'), 'qcow2', 0xc2, 0, MIB);
  return join(snap, '2');
}

beforeAll(async () => {
  stack = await Stack.start();
});

afterAll(async () => {
  await stack?.stop();
});

describe.each(['relative', 'bare'] as const)(
  'a VM directory laid out by OpenNebula (%s backing names)',
  (style) => {
    const vmId = style === 'relative' ? 41 : 42;
    const vmDir = `${SYS}/${vmId}`;
    const disk = `${vmDir}/disk.0`;
    let active: string;

    beforeAll(async () => {
      active = await openNebulaLayout(stack.localPath('host01', vmDir), style);
      await writeVmXml(stack.fixturesDir, {
        id: vmId,
        lcmState: LCM_POWEROFF_SNAPSHOT,
        disks: [
          {
            diskId: 0,
            imageId: 0,
            source: `${IMG_DS}/compat${vmId}`,
            format: 'qcow2',
            tmMad: 'grpc',
            size: 16,
          },
        ],
        snapshots: [{ diskId: 0, snapshots: [{ id: 0 }, { id: 1, active: true }] }],
        history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
      });
    });

    it('cpds saves a snapshot and the current state', async () => {
      const saved = `${IMG_DS}/compat-saved-${vmId}`;
      expectOk(await tm('cpds', [`host01:${disk}`, saved, '0', `${vmId}`, '1']));
      expect(await holdsPattern(stack.localPath('frontend', saved), 0xa0)).toBe(true);
      expectOk(await tm('cpds', [`host01:${disk}`, `${saved}-now`, '-1', `${vmId}`, '1']));
      expect(await holdsPattern(stack.localPath('frontend', `${saved}-now`), 0xc2)).toBe(true);
    });

    it('snap_create adds a layer on top; snap_revert and snap_delete keep every surviving state', async () => {
      expectOk(await tm('snap_create', [`host01:${disk}`, '2', `${vmId}`, '1']));
      expect(layout(stack.localPath('host01', vmDir))).toContain('disk.0 -> disk.0.snap/3');
      expectOk(await tm('snap_revert', [`host01:${disk}`, '0', `${vmId}`, '1']));
      expect(await holdsPattern(stack.localPath('host01', disk), 0xa0)).toBe(true);
      expectOk(await tm('snap_delete', [`host01:${disk}`, '1', `${vmId}`, '1']));
      expectOk(await tm('snap_revert', [`host01:${disk}`, '2', `${vmId}`, '1']));
      expect(await holdsPattern(stack.localPath('host01', disk), 0xc2)).toBe(true);
      await runTool('qemu-img', ['check', '-q', stack.localPath('host01', disk)]);
      expect(active).toMatch(/disk\.0\.snap\/2$/);
    });

    it('mv to another host and delete work on the directory', async () => {
      expectOk(await tm('mv', [`host01:${vmDir}`, `host02:${vmDir}`, `${vmId}`, '0']));
      expect(await holdsPattern(stack.localPath('host02', disk), 0xc2)).toBe(true);
      await runTool('qemu-img', ['check', '-q', stack.localPath('host02', disk)]);
      expectOk(await tm('delete', [`host02:${vmDir}`, `${vmId}`, '0']));
      expect(layout(stack.localPath('host02', SYS)).filter((l) => l.startsWith(`${vmId}`))).toEqual([]);
    });
  },
);
