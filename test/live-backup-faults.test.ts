// Backup refusals and faults through a real agent with real libvirt TCG domains: bad disks, bad
// requests, an unknown domain, and backup_cancel during a live backup.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, failure } from './support/agent/agent-fixture.js';
import { inc, qemuIo, useLiveBackupAgent } from './support/live-backup-fixture.js';
import { diskSource } from './support/libvirt.js';
import { appearsWhile } from './support/files.js';
import { BackupMode } from '../proto/gen/onestorage/agent/v1/agent.js';

const agent = useLiveBackupAgent(200);

describe('faults', () => {
  it('a raw disk in INCREMENT mode: one line naming the disk; nothing left', async () => {
    const vm = await agent.newVm([{ format: 'raw' }]);
    const f = await failure(
      agent.prepare(vm, { ...inc(0), live: false, disks: [{ diskId: 0, target: 'vda' }] }),
    );
    expect(f.reason).toBe('INVALID_ARGUMENT');
    expect(f.message).toMatch(/disk 0 .* is raw; incremental backups \(CBT\) need qcow2 disks$/);
    expect(f.message).not.toMatch(/\n/);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    await agent.startVm(vm, ['raw']);
    const g = await failure(agent.prepare(vm, { ...inc(0), disks: [{ diskId: 0, target: 'vda' }] }));
    expect(g.message).toMatch(new RegExp(`disk 0 \\(vda\\) of one-bk${vm.id} is raw; .*need qcow2`));
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
  }, 60_000);

  it('an unknown domain (the live hook for a VM that is not running): DOMAIN_NOT_FOUND, nothing made', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }]);
    const f = await failure(agent.prepare(vm, { disks: [{ diskId: 0, target: 'vda' }] }));
    expect(f.reason).toBe('DOMAIN_NOT_FOUND');
    expect(f.message).toMatch(new RegExp(`one-bk${vm.id}`));
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
  });

  it("a TARGET that is not the VM directory's disk.<id> is refused, not copied", async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }, { format: 'qcow2' }]);
    const dom = await agent.startVm(vm, ['qcow2', 'qcow2']);
    const f = await failure(agent.prepare(vm, { disks: [{ diskId: 0, target: 'vdb' }] }));
    expect(f.reason).toBe('INVALID_ARGUMENT');
    expect(f.message).toMatch(/disk vdb of domain one-bk\d+ is .*\/disk\.1, not disk\.0 of the VM directory/);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk(0));
    await dom.destroy();
  }, 60_000);

  it('bad requests name the field', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }]);
    expect(
      (
        await failure(
          agent.prepare(vm, { mode: BackupMode.UNRECOGNIZED, disks: [{ diskId: 0, target: 'vda' }] }),
        )
      ).message,
    ).toMatch(/mode must be one of FULL, INCREMENT/);
    expect(
      (await failure(agent.prepare(vm, { backupId: 3, disks: [{ diskId: 0, target: 'vda' }] }))).message,
    ).toMatch(/backup_id 3 and parent_id -1 do not fit mode FULL/);
    expect((await failure(agent.prepare(vm, { disks: [{ diskId: 5, target: 'vda' }] }))).reason).toBe(
      'NOT_FOUND',
    );
    expect(
      (await failure(agent.prepare(vm, { vmDir: '/etc', disks: [{ diskId: 0, target: 'vda' }] }))).reason,
    ).toBe('PATH_OUTSIDE_ROOTS');
  });

  it('backup_cancel during a live backup: job aborted, partial files removed, VM on its original disks', async () => {
    const vm = await agent.newVm([{ format: 'qcow2', sizeMb: 2048 }]);
    // Enough data that the copy takes a while (written before the VM starts: fast).
    await qemuIo(vm.disk(0), 'qcow2', 'write -P 0x61 0 1536M');
    const dom = await agent.startVm(vm, ['qcow2']);
    const original = await diskSource(vm.domain, 'vda');
    const running = agent.prepare(vm, { disks: [{ diskId: 0, target: 'vda' }] }).then(
      () => 'finished',
      (err: Error) => err.message,
    );
    // Cancel once the backup is under way (the guest is on the overlay and the copy has begun).
    expect(await appearsWhile(join(vm.dir, 'backup', 'disk.0.0'), running)).toBe(true);
    const c = await call(agent.client.backupCancel.bind(agent.client), {
      vmDir: vm.onedDir,
      domain: vm.domain,
    });
    expect(c.running).toBe(true);
    expect(await running).toMatch(/cancelled by backup_cancel/);
    expect(await diskSource(vm.domain, 'vda')).toBe(original);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(await dom.state()).toBe('running');
    // A cancel with nothing running succeeds and says so.
    expect(
      (await call(agent.client.backupCancel.bind(agent.client), { vmDir: vm.onedDir, domain: vm.domain }))
        .running,
    ).toBe(false);
    await dom.destroy();
  }, 120_000);
});
