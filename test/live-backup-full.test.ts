// FULL backups through a real agent with real libvirt TCG domains, powered off and live: each
// backup is restored and compared byte for byte with what the disk held at the backup point.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from '../common/src/tools/run-tool.js';
import { restoreMatches, snapshotContent } from './support/backup-chain.js';
import { MIB, inc, qemuIo, useLiveBackupAgent, virsh } from './support/live-backup-fixture.js';
import { diskSource } from './support/libvirt.js';
import { FreezeMode, BackupMode } from '../proto/gen/onestorage/agent/v1/agent.js';

const agent = useLiveBackupAgent(100);

describe('FULL', () => {
  it('powered off: a converted copy of each disk and vm.xml in base64; post removes backup/', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }, { format: 'raw' }]);
    await qemuIo(vm.disk(0), 'qcow2', 'write -P 0x11 1M 2M');
    await qemuIo(vm.disk(1), 'raw', 'write -P 0x12 40M 1M');
    const xml = `<VM><ID>${vm.id}</ID><NAME>${'x'.repeat(300)}</NAME></VM>`;
    const r = await agent.prepare(vm, {
      live: false,
      vmXml: xml,
      disks: [
        { diskId: 0, target: 'vda' },
        { diskId: 1, target: 'vdb' },
      ],
    });
    expect(r.method).toBe('convert');
    expect(r.disks.map((d) => [d.path, d.type])).toEqual([
      [`${vm.onedDir}/backup/disk.0.0`, BackupMode.BACKUP_MODE_FULL],
      [`${vm.onedDir}/backup/disk.1.0`, BackupMode.BACKUP_MODE_FULL],
    ]);
    const vmXml = await readFile(join(vm.dir, 'backup', 'vm.xml'), 'utf8');
    expect(vmXml.split('\n').every((l) => l.length <= 60)).toBe(true);
    expect(Buffer.from(vmXml, 'base64').toString()).toBe(xml);
    for (const n of [0, 1]) {
      const expected = join(vm.repo, `expected.${n}.raw`);
      await snapshotContent(vm.disk(n), n === 0 ? 'qcow2' : 'raw', expected);
      expect(await restoreMatches([join(vm.dir, 'backup', `disk.${n}.0`)], expected)).toBe(true);
    }
    await agent.finish(vm, false);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
  }, 60_000);

  it('live: the base is copied under a temporary overlay; post commits it back onto the original disk', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }, { format: 'raw' }, { format: 'qcow2' }]);
    const dom = await agent.startVm(vm, ['qcow2', 'raw', 'qcow2']);
    const original = [await diskSource(vm.domain, 'vda'), await diskSource(vm.domain, 'vdb')];
    await dom.write('vda', 0x21, 4 * MIB, 2 * MIB);
    await dom.write('vdb', 0x22, 10 * MIB, MIB);
    const expected = [join(vm.repo, 'e0.raw'), join(vm.repo, 'e1.raw')];
    await snapshotContent(vm.disk(0), 'qcow2', expected[0] ?? '');
    await snapshotContent(vm.disk(1), 'raw', expected[1] ?? '');
    const r = await agent.prepare(vm, {
      freeze: FreezeMode.FREEZE_MODE_AGENT, // no guest agent in the test domain: falls back to suspend
      disks: [
        { diskId: 0, target: 'vda' },
        { diskId: 1, target: 'vdb' },
      ],
    });
    expect(r.method).toBe('overlay');
    expect(await dom.state()).toBe('running');
    expect(await diskSource(vm.domain, 'vda')).toBe(join(vm.dir, 'tmp', 'overlay_0.qcow2'));
    expect(await diskSource(vm.domain, 'vdc')).toBe(vm.disk(2));
    // The guest writes on while the backup is taken: not in the backup, but kept by the commit.
    await dom.write('vda', 0x23, 20 * MIB, MIB);
    for (const n of [0, 1]) {
      expect(await restoreMatches([join(vm.dir, 'backup', `disk.${n}.0`)], expected[n] ?? '')).toBe(true);
    }
    await agent.finish(vm);
    expect([await diskSource(vm.domain, 'vda'), await diskSource(vm.domain, 'vdb')]).toEqual(original);
    expect(existsSync(join(vm.dir, 'tmp'))).toBe(false);
    expect(existsSync(join(vm.dir, 'backup'))).toBe(false);
    expect(await virsh('domstate', vm.domain)).toMatch(/running/);
    await dom.flush('vda');
    const after = join(vm.repo, 'after.raw');
    await snapshotContent(vm.disk(0), 'qcow2', after);
    await qemuIo(after, 'raw', 'read -P 0x21 4M 2M').then(async () => {
      const { stdout } = await runTool('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x23 20M 1M', after]);
      expect(stdout).not.toMatch(/Pattern verification failed/);
    });
  }, 120_000);

  it('a target left in backup/ and tmp/ by an earlier run does not stop the next backup (FULL, INCREMENT, FULL again)', async () => {
    const vm = await agent.newVm([{ format: 'qcow2' }]);
    const dom = await agent.startVm(vm, ['qcow2']);
    await dom.write('vda', 0x31, 0, MIB);
    await mkdir(join(vm.dir, 'backup'), { recursive: true });
    await mkdir(join(vm.dir, 'tmp'), { recursive: true });
    await writeFile(join(vm.dir, 'backup', 'disk.0.0'), 'stale');
    await writeFile(join(vm.dir, 'tmp', 'overlay_0.qcow2'), 'stale');
    const expected = join(vm.repo, 'e.raw');
    await snapshotContent(vm.disk(0), 'qcow2', expected);
    for (const mode of [{}, inc(0), {}]) {
      await agent.prepare(vm, { ...mode, disks: [{ diskId: 0, target: 'vda' }] });
      expect(await restoreMatches([join(vm.dir, 'backup', 'disk.0.0')], expected)).toBe(true);
      await agent.finish(vm);
    }
    expect(await diskSource(vm.domain, 'vda')).toBe(vm.disk(0));
  }, 120_000);
});
