// Incremental backups (CBT) through a real agent with real libvirt TCG domains, live and powered
// off: every chain is restored (rebase + convert) and compared byte for byte with what the disk
// held at each backup point; a missing parent starts a new chain, a backup oned never recorded is
// taken again.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupPrepareResponse } from '../proto/gen/onestorage/agent/v1/agent.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { keep, restoreMatches, snapshotContent } from './support/backup-chain.js';
import type { TestDomain } from './support/libvirt.js';
import { MIB, inc, qemuIo, useLiveBackupAgent, virsh } from './support/live-backup-fixture.js';
import { diskSource } from './support/libvirt.js';
import { BackupMode } from '../proto/gen/onestorage/agent/v1/agent.js';

/** An increment is the changed data plus qcow2 metadata: well under this over what was written. */
const INCREMENT_SLACK = 1 * MIB;

const agent = useLiveBackupAgent(150);

/** Writes between backups: [pattern, offset MiB, length KiB] or a zeroed range (pattern -1). */
const STEPS: ReadonlyArray<ReadonlyArray<readonly [number, number, number]>> = [
  [
    [0x41, 0, 2048],
    [0x42, 30, 1024],
  ],
  [
    [0x43, 1, 512],
    [0x44, 50, 256],
  ],
  [
    [-1, 30, 512],
    [0x45, 40, 1024],
  ],
  [[0x46, 60, 2048]],
];
const written = (step: number): number => (STEPS[step] ?? []).reduce((n, [, , kib]) => n + kib * 1024, 0);

async function chainTest(live: (step: number) => boolean): Promise<void> {
  // A second disk that is not backed up: backup='no' and checkpoint='no' for it.
  const vm = await agent.newVm([{ format: 'qcow2' }, { format: 'raw' }]);
  let dom: TestDomain | undefined;
  const chain: string[] = [];
  for (let step = 0; step < STEPS.length; step++) {
    const isLive = live(step);
    if (isLive && !dom) dom = await agent.startVm(vm, ['qcow2', 'raw']);
    if (!isLive && dom) {
      await dom.destroy();
      dom = undefined;
    }
    for (const [pattern, offMb, kib] of STEPS[step] ?? []) {
      const off = offMb * MIB;
      if (dom)
        await (pattern < 0
          ? dom.writeZeroes('vda', off, kib * 1024)
          : dom.write('vda', pattern, off, kib * 1024));
      else
        await qemuIo(
          vm.disk(0),
          'qcow2',
          pattern < 0 ? `write -z ${off} ${kib}k` : `write -P ${pattern} ${off} ${kib}k`,
        );
    }
    const expected = join(vm.repo, `expected.${step}.raw`);
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    const r = await agent.prepare(vm, { ...inc(step), live: isLive, disks: [{ diskId: 0, target: 'vda' }] });
    expect(r.method).toBe(isLive ? 'push' : 'bitmap');
    const d = r.disks[0];
    expect(d?.type).toBe(step === 0 ? BackupMode.BACKUP_MODE_FULL : BackupMode.BACKUP_MODE_INCREMENT);
    expect(d?.newChainReason).toBe('');
    const file = join(vm.dir, 'backup', `disk.0.${step}`);
    if (step > 0) {
      const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', file])).stdout) as Record<
        string,
        unknown
      >;
      expect(info['backing-filename']).toBe(`disk.0.${step - 1}`);
      // Close to the data written, far from the disk size.
      expect((await stat(file)).blocks * 512).toBeLessThan(written(step) + INCREMENT_SLACK);
    }
    chain.push(await keep(file, vm.repo, step));
    await agent.finish(vm, isLive);
    expect(await restoreMatches(chain, expected)).toBe(true);
    if (isLive) {
      // The chain keeps the parent's checkpoint and the new one; older ones are dropped.
      const names = (await virsh('checkpoint-list', vm.domain, '--name')).split('\n').filter((l) => l.trim());
      const want = step === 0 ? [0] : [step - 1, step];
      expect(names.map((n) => n.trim()).sort()).toEqual(want.map((n) => `one-${vm.id}-${n}`));
    } else {
      // Powered off, the same holds for the qcow2 bitmaps.
      const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', vm.disk(0)])).stdout) as {
        'format-specific': { data: { bitmaps?: Array<{ name: string }> } };
      };
      const names = (info['format-specific'].data.bitmaps ?? []).map((b) => b.name).sort();
      const want = step === 0 ? [0] : [step - 1, step];
      expect(names).toEqual(want.map((n) => `one-${vm.id}-${n}`));
    }
  }
  if (dom) {
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk(0));
    await dom.destroy();
  }
}

describe('INCREMENT (CBT): FULL → INCREMENT × 3, each restored point matches', () => {
  it('live: checkpoints one-<vm>-<n> and push backup-begin', () => chainTest(() => true), 180_000);
  it('powered off: qcow2 bitmaps and qemu-nbd', () => chainTest(() => false), 120_000);
  it(
    'mixed: live, then powered off (the bitmaps libvirt left in the qcow2 carry on)',
    () => chainTest((step) => step < 2),
    180_000,
  );
});

describe('a missing parent starts a new full chain, which still restores when rebased onto the old one', () => {
  for (const live of [true, false]) {
    it(
      live ? 'live: checkpoint gone' : 'powered off: bitmap gone',
      async () => {
        const vm = await agent.newVm([{ format: 'qcow2' }]);
        const dom = live ? await agent.startVm(vm, ['qcow2']) : undefined;
        const write = async (pattern: number, off: number, len: number): Promise<void> => {
          if (dom)
            await (pattern < 0 ? dom.writeZeroes('vda', off, len) : dom.write('vda', pattern, off, len));
          else
            await qemuIo(
              vm.disk(0),
              'qcow2',
              pattern < 0 ? `write -z ${off} ${len}` : `write -P ${pattern} ${off} ${len}`,
            );
        };
        const chain: string[] = [];
        const backup = async (step: number): Promise<BackupPrepareResponse> => {
          const r = await agent.prepare(vm, { ...inc(step), live, disks: [{ diskId: 0, target: 'vda' }] });
          chain.push(await keep(join(vm.dir, 'backup', `disk.0.${step}`), vm.repo, step));
          await agent.finish(vm, live);
          return r;
        };
        await write(0x51, 0, MIB);
        await backup(0);
        // Data in increment 1 that the guest then zeroes: the new chain's full must not let a
        // restore read it back through its backing file.
        await write(0x52, 8 * MIB, 2 * MIB);
        await backup(1);
        await write(-1, 8 * MIB, 2 * MIB);
        await write(0x53, 16 * MIB, MIB);
        if (dom) await virsh('checkpoint-delete', vm.domain, `one-${vm.id}-1`);
        else await runTool('qemu-img', ['bitmap', '--remove', vm.disk(0), `one-${vm.id}-1`]);
        const expected = join(vm.repo, 'expected.raw');
        await snapshotContent(vm.disk(0), 'qcow2', expected);
        const r = await backup(2);
        expect(r.disks[0]?.type).toBe(BackupMode.BACKUP_MODE_FULL);
        expect(r.disks[0]?.newChainReason).toMatch(new RegExp(`one-${vm.id}-1 not found`));
        expect(await restoreMatches(chain, expected)).toBe(true);
        // ... and the new chain goes on with increments.
        await write(0x54, 24 * MIB, MIB);
        const expected3 = join(vm.repo, 'expected3.raw');
        await snapshotContent(vm.disk(0), 'qcow2', expected3);
        expect((await backup(3)).disks[0]?.type).toBe(BackupMode.BACKUP_MODE_INCREMENT);
        expect(await restoreMatches(chain, expected3)).toBe(true);
        await dom?.destroy();
      },
      120_000,
    );
  }
});

describe('a backup oned never recorded (its checkpoint is left) is taken again', () => {
  it('live: the stale checkpoint with the new id is deleted and the increment still holds every change since the parent', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }]);
    const dom = await agent.startVm(vm, ['qcow2']);
    const chain: string[] = [];
    await dom.write('vda', 0x81, 0, MIB);
    await agent.prepare(vm, { ...inc(0), disks: [{ diskId: 0, target: 'vda' }] });
    chain.push(await keep(join(vm.dir, 'backup', 'disk.0.0'), vm.repo, 0));
    await agent.finish(vm);
    await dom.write('vda', 0x82, 4 * MIB, MIB);
    // Backup 1 runs, but oned does not record it (the datastore upload failed): LAST_INCREMENT_ID stays 0.
    await agent.prepare(vm, { ...inc(1), disks: [{ diskId: 0, target: 'vda' }] });
    await agent.finish(vm);
    expect(await virsh('checkpoint-list', vm.domain, '--name')).toMatch(new RegExp(`one-${vm.id}-1`));
    await dom.write('vda', 0x83, 8 * MIB, MIB);
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    const r = await agent.prepare(vm, { ...inc(1), disks: [{ diskId: 0, target: 'vda' }] });
    expect(r.disks[0]?.type).toBe(BackupMode.BACKUP_MODE_INCREMENT);
    chain.push(await keep(join(vm.dir, 'backup', 'disk.0.1'), vm.repo, 1));
    await agent.finish(vm);
    // Both writes since backup 0 are in the retaken increment.
    expect(await restoreMatches(chain, expected)).toBe(true);
    await dom.destroy();
  }, 120_000);
});
