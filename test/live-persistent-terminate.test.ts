// A persistent image after live work: a VM runs on it, takes a live snapshot, deletes it live (the
// domain then runs on a standalone layer, and in shared mode the image's own file still holds the
// data of that first snapshot), writes on, and is terminated as oned does it (the domain stops,
// `mvds` of the disk, `delete` of the VM directory). The image must then hold the VM's last data:
// for a new VM linked to it (whose guest reads it), for a clone of the image and for its export. In both TM
// drivers: grpc_qcow2 (the image used in place) and grpc (copied to the host and back). Through
// the shims, the coordinator and real agents.
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { imagesIdentical } from './support/files.js';
import { expectOk } from './support/assertions.js';
import { actionData } from './support/ds-action-data.js';
import { dsAction, expectSuccess } from './support/ds-image-stack.js';
import { importInfo, printedImage } from './support/ds-image-life.js';
import { type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from './support/libvirt.js';

const LCM = { DISK_SNAPSHOT: 57, DISK_SNAPSHOT_DELETE: 59, EPILOG: 11, PROLOG: 1 } as const;
const SIZE_MB = 32;

for (const [driver, shared, vm] of [
  ['grpc_qcow2', true, 74],
  ['grpc', false, 75],
] as const) {
  describe(`${driver}: a persistent image after a live snapshot and a live delete, then terminate`, () => {
    const domain = `one-lp${vm}`;
    const next = vm + 10;
    const nextDomain = `one-lp${next}`;
    const vmDir = (id: number): string => `${ONED_DATASTORE_LOCATION}/0/${id}`;
    const IMAGE = `${ONED_DATASTORE_LOCATION}/1/persistentlive${vm}0000000000000000`;
    let base: string;
    let stack: Stack;
    let dom: TestDomain | undefined;
    let nextDom: TestDomain | undefined;
    /** offset → the byte the first VM wrote there last. */
    const written = new Map<number, number>();
    const expected = (): string => join(base, 'expected.raw');
    const tm = (action: string, args: string[]): Promise<ActionRun> =>
      runAction(stack.remotesDir, 'tm', driver, action, args);
    const host01 = (p: string): string => stack.localPath('host01', p);

    async function writeVm(id: number, lcmState: number, deployId: string): Promise<void> {
      await writeVmXml(stack.fixturesDir, {
        id,
        lcmState,
        deployId,
        disks: [
          {
            diskId: 0,
            imageId: 1,
            source: IMAGE,
            format: 'qcow2',
            tmMad: driver,
            persistent: true,
            size: SIZE_MB,
            target: 'vda',
          },
        ],
        history: [{ hostname: 'host01', dsId: 0, tmMad: driver }],
        backupConfig: { FS_FREEZE: 'NONE' },
      });
    }

    async function guestWrite(byte: number, offset: number): Promise<void> {
      await dom?.write('vda', byte, offset, MIB);
      await runTool('qemu-io', ['-f', 'raw', '-c', `write -P ${byte} ${offset} ${MIB}`, expected()]);
      written.set(offset, byte);
    }

    beforeAll(async () => {
      await ensureLibvirt();
      await destroyIfRunning(domain);
      await destroyIfRunning(nextDomain);
      base = await mkdtemp(join(tmpdir(), `live-persistent-${driver}-`));
      await chmod(base, 0o755); // QEMU (libvirt-qemu) walks down to the disks
      const one = join(base, 'datastores');
      await mkdir(one);
      stack = await Stack.start({
        baseDir: join(base, 'stack'),
        ...(shared ? { hostDirs: { frontend: one, host01: one } } : {}),
        agentSettings: (name) => (name === 'frontend' ? { export: { listen: '127.0.0.1:0' } } : {}),
      });
      await makeImage(stack.localPath('frontend', IMAGE), 'qcow2', SIZE_MB, 0x22);
      const img = stack.localPath('frontend', IMAGE);
      await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img, expected()]);
      await writeVm(vm, LCM.PROLOG, domain);
      expectOk(await tm('ln', [`frontend:${IMAGE}`, `host01:${vmDir(vm)}/disk.0`, `${vm}`, '1']));
      dom = await startDomain(
        domain,
        [{ target: 'vda', path: host01(`${vmDir(vm)}/disk.0`), format: 'qcow2' }],
        base,
      );
    }, 120_000);

    afterAll(async () => {
      await dom?.destroy();
      await nextDom?.destroy();
      await stack?.stop();
      if (base) await rm(base, { recursive: true, force: true });
    });

    it('the VM snapshots live, deletes the snapshot live and writes on', async () => {
      await guestWrite(0x31, 2 * MIB);
      await writeVm(vm, LCM.DISK_SNAPSHOT, domain);
      expectOk(await tm('snap_create_live', [`host01:${vmDir(vm)}/disk.0`, '0', `${vm}`, '0']));
      await guestWrite(0x32, 3 * MIB);
      await writeVm(vm, LCM.DISK_SNAPSHOT_DELETE, domain);
      expectOk(await tm('snap_delete', [`host01:${vmDir(vm)}/disk.0`, '0', `${vm}`, '0']));
      await guestWrite(0x33, 4 * MIB);
      await guestWrite(0x34, 2 * MIB);
      expect(await imagesIdentical(host01(`${vmDir(vm)}/disk.0`), 'qcow2', expected(), 'raw')).toBe(true);
      expect(await dom?.state()).toBe('running');
    });

    it('terminate (the domain stops, mvds, delete): the image holds the last data', async () => {
      await dom?.flush('vda');
      await dom?.destroy();
      dom = undefined;
      await writeVm(vm, LCM.EPILOG, domain);
      expectOk(await tm('mvds', [`host01:${vmDir(vm)}/disk.0`, IMAGE, `${vm}`, '1']));
      expectOk(await tm('delete', [`host01:${vmDir(vm)}`, `${vm}`, '0']));
      const r = await runTool('qemu-img', ['info', '-U', '-f', 'qcow2', stack.localPath('frontend', IMAGE)]);
      expect(r.stdout).toMatch(/file format: qcow2/);
    });

    it('a clone of the image holds the last data', async () => {
      const cloneId = 40 + vm;
      const out = expectSuccess(
        await dsAction(
          stack,
          'clone',
          cloneId,
          actionData({
            image: { id: cloneId, path: IMAGE, format: 'qcow2', size: SIZE_MB },
            datastore: { id: 1, template: {} },
          }),
        ),
      );
      const source = /^(\S+) qcow2\n$/.exec(out)?.[1];
      expect(source, out).toBeDefined();
      expect(
        await imagesIdentical(stack.localPath('frontend', source ?? ''), 'qcow2', expected(), 'raw'),
      ).toBe(true);
    });

    it('an export of the image, imported again with cp, holds the last data', async () => {
      const exported = importInfo(
        expectSuccess(
          await dsAction(
            stack,
            'export',
            60 + vm,
            actionData({
              image: { id: 1, source: IMAGE, format: 'qcow2', size: SIZE_MB },
              datastore: { id: 1, template: {} },
            }),
          ),
        ),
      );
      const importId = 50 + vm;
      const imported = printedImage(
        expectSuccess(
          await dsAction(
            stack,
            'cp',
            importId,
            actionData({
              image: {
                id: importId,
                path: exported.IMPORT_SOURCE,
                format: null,
                size: SIZE_MB,
                template: { FROM_APP_MD5: exported.MD5 },
              },
              datastore: { id: 1, template: {} },
            }),
          ),
        ),
      );
      const copy = stack.localPath('frontend', imported.source);
      expect(await imagesIdentical(copy, imported.format, expected(), 'raw')).toBe(true);
    });

    it('a new VM linked to the image reads the last data from inside the guest', async () => {
      await writeVm(next, LCM.PROLOG, nextDomain);
      expectOk(await tm('ln', [`frontend:${IMAGE}`, `host01:${vmDir(next)}/disk.0`, `${next}`, '1']));
      const disk = host01(`${vmDir(next)}/disk.0`);
      expect(await imagesIdentical(disk, 'qcow2', expected(), 'raw')).toBe(true);
      nextDom = await startDomain(nextDomain, [{ target: 'vda', path: disk, format: 'qcow2' }], base);
      for (const [offset, byte] of written) await nextDom.read('vda', byte, offset, MIB);
      await nextDom.read('vda', 0x22, 0, MIB);
      expect(await nextDom.state()).toBe('running');
    });
  });
}
