// A fabricated grpc_backup repository (docs/backups.md#repository) for the restore tests: each
// backup's directory `<base>/<vmid>/<backup_id>/` with the disk files prebackup makes (a FULL
// file, then increments naming their parent `disk.<disk>.<parent>`), vm.xml and SHA256SUMS.
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePattern } from '../../cli/src/demo/demo-images.js';
import {
  type ImageFixture,
  writeDatastoreXml,
  writeImageXml,
} from '../../cli/src/demo/fake-oned/fixtures.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { writeSums } from './backup-repo-chain.js';

/** What one increment of one disk writes: a byte pattern over [offset, offset + length). */
export interface Write {
  offset: number;
  length: number;
  byte: number;
}

/** One backup of the chain: its id, and per disk the writes since the previous backup. */
export interface Backup {
  bid: string;
  disks: Readonly<Record<number, readonly Write[]>>;
  /** Extra files of the directory (disk.tpm.0). */
  extra?: Readonly<Record<string, Buffer>>;
}

/**
 * Writes the chain into `<vmDir>/<bid>/` (`vmDir` local, `<base>/<vmid>` on the backup server):
 * backup i holds `disk.<d>.<i>`, a qcow2 of `sizeMb` for i = 0, an overlay naming
 * `disk.<d>.<i-1>` after; every disk carries bitmap `one-<vmid>-<i>` as a CBT chain leaves it.
 */
export async function writeRepository(
  vmDir: string,
  vmId: number,
  sizeMb: number,
  chain: readonly Backup[],
): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'backup-repository-'));
  try {
    for (const [i, b] of chain.entries()) {
      const dir = join(vmDir, b.bid);
      await mkdir(dir, { recursive: true });
      for (const [disk, writes] of Object.entries(b.disks)) {
        const name = `disk.${disk}.${i}`;
        const file = join(scratch, name);
        const args = ['create', '-q', '-f', 'qcow2'];
        if (i > 0) args.push('-b', `disk.${disk}.${i - 1}`, '-F', 'qcow2', file);
        else args.push(file, `${sizeMb}M`);
        await runTool('qemu-img', args);
        for (const w of writes) await writePattern(file, 'qcow2', w.byte, w.offset, w.length);
        await runTool('qemu-img', ['bitmap', '--add', '-f', 'qcow2', file, `one-${vmId}-${i}`]);
        await copyFile(file, join(dir, name));
      }
      await writeFile(join(dir, 'vm.xml'), Buffer.from(`<VM><ID>${vmId}</ID></VM>`).toString('base64'));
      for (const [name, data] of Object.entries(b.extra ?? {})) await writeFile(join(dir, name), data);
      await writeSums(dir);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * What the backup datastore's `backup` does with `<vmdir>/backup/` (a stand-in until it is used
 * here): every file copied into the repository directory `dir`, then its SHA256SUMS.
 */
export async function storeBackup(backupDir: string, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names = (await readdir(backupDir)).sort();
  for (const name of names) await copyFile(join(backupDir, name), join(dir, name));
  await writeSums(dir);
  return names;
}

/** The BACKUP image oned keeps for such a chain (TYPE 6, VMS/ID, BACKUP_INCREMENTS). */
export function backupImage(p: {
  id: number;
  vmId: number;
  dsId: number;
  chain: readonly Backup[];
}): ImageFixture {
  return {
    id: p.id,
    name: `${p.vmId} backup`,
    type: 6,
    source: p.chain[p.chain.length - 1]?.bid ?? '',
    format: 'raw',
    size: 40,
    datastoreId: p.dsId,
    datastore: 'backups',
    vms: [p.vmId],
    backupIncrements: p.chain.map((b, i) => ({
      id: i,
      type: i === 0 ? 'FULL' : 'INCREMENT',
      source: b.bid,
      size: 10,
    })),
  };
}

/**
 * The stack the TM restore tests run on: frontend, host01 (sharing `datastores`, so the front-end
 * sees the hosts' files) and backup01, which serves backup datastore `backupDs` (grpc_backup).
 */
export async function startRestoreStack(datastores: string, backupDs: number): Promise<Stack> {
  const stack = await Stack.start({
    hosts: ['frontend', 'host01', 'backup01'],
    hostDirs: { frontend: datastores, host01: datastores },
  });
  await writeDatastoreXml(stack.fixturesDir, {
    id: backupDs,
    type: 3,
    dsMad: 'grpc_backup',
    tmMad: '-',
    template: { GRPC_BACKUP_HOST: 'backup01' },
  });
  return stack;
}

/** `chain` written into backup01's repository for `vmId` and the BACKUP image oned keeps for it. */
export async function storeBackupImage(
  stack: Stack,
  p: { id: number; vmId: number; dsId: number; sizeMb: number; chain: readonly Backup[] },
): Promise<void> {
  const dir = stack.localPath('backup01', `${ONED_DATASTORE_LOCATION}/${p.dsId}/${p.vmId}`);
  await writeRepository(dir, p.vmId, p.sizeMb, p.chain);
  await writeImageXml(stack.fixturesDir, backupImage(p));
}
