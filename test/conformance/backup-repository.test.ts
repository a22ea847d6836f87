// Conformance of the backup repository RPCs (ReceiveBackup, ListBackup, RemoveBackups,
// OpenBackupChain, FlattenBackups; docs/backups.md#repository) against a real agent over mutual
// TLS. The agent is its own backup server: it pulls `backup/` trees from its own data listener.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { fabricateChain } from '../support/backup-repo-chain.js';
import { AGENT_NAME, call, ds } from '../support/agent/agent-fixture.js';
import { expectFailure, expectSameEveryTime, useConformanceAgent } from './support/conformance-agent.js';
import { makeImage } from './support/images.js';

const c = useConformanceAgent();
const { ALREADY_EXISTS, INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, DATA_LOSS } = grpc.status;

/** A `<vmdir>/backup/` as prebackup leaves it: disk.0.0 (qcow2) and vm.xml. */
async function backupTree(vm: number): Promise<string> {
  c.tracker.track(`0/${vm}`);
  // the repository (datastore 100) goes with each test
  c.tracker.track('100');
  await makeImage(c.local(`0/${vm}/backup/disk.0.0`), 'qcow2', 4);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x61 0 1M', c.local(`0/${vm}/backup/disk.0.0`)]);
  writeFileSync(c.local(`0/${vm}/backup/vm.xml`), Buffer.from(`<VM><ID>${vm}</ID></VM>`).toString('base64'));
  return ds(`0/${vm}/backup`);
}

async function receiveBackup(from: string, backupDir: string) {
  const sent = await call(c.client.openSend.bind(c.client), {
    path: from,
    ttlSeconds: 0,
    receiverName: AGENT_NAME,
  });
  return call(c.client.receiveBackup.bind(c.client), {
    ticket: sent.ticket,
    dataAddress: sent.dataAddress,
    sourceName: AGENT_NAME,
    backupDir,
  });
}

/** A stored backup `<BASE>/<vm>/<bid>` (BASE = datastore 100), received through the RPC. */
async function storedBackup(vm: number, bid: string): Promise<string> {
  c.tracker.track(`100/${vm}`);
  const dir = ds(`100/${vm}/${bid}`);
  await receiveBackup(await backupTree(vm), dir);
  return dir;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('ReceiveBackup', () => {
  it('stores the tree with a SHA256SUMS sha256sum agrees with, under its final name only; ALREADY_EXISTS on a repeat', async () => {
    c.tracker.track('100/801');
    const from = await backupTree(801);
    const r = await receiveBackup(from, ds('100/801/0a1b2c3d4e5f'));
    expect(r.files).toBe(2);
    expect(r.sizeMb).toBeGreaterThan(0);
    const dir = c.local('100/801/0a1b2c3d4e5f');
    expect(readdirSync(dir).sort()).toEqual(['SHA256SUMS', 'disk.0.0', 'vm.xml']);
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toBe(
      `${sha256(join(dir, 'disk.0.0'))}  disk.0.0\n${sha256(join(dir, 'vm.xml'))}  vm.xml\n`,
    );
    expect(readdirSync(c.local('100/801'))).toEqual(['0a1b2c3d4e5f']);
    await expectFailure(receiveBackup(from, ds('100/801/0a1b2c3d4e5f')), ALREADY_EXISTS, 'ALREADY_EXISTS');
  });

  it('a backup_dir outside the roots or not <vmid>/<backup id> is refused, and nothing is written', async () => {
    const from = await backupTree(802);
    await expectFailure(
      receiveBackup(from, '/etc/802/0a1b2c3d4e5f'),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    await expectFailure(receiveBackup(from, ds('100/802/not-a-bid')), INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    expect(existsSync(c.local('100/802'))).toBe(false);
  });
});

describe('ListBackup', () => {
  it('lists the files (not SHA256SUMS) and vm.xml; the same every time; a missing one is exists=false', async () => {
    const dir = await storedBackup(803, '1a1b2c3d4e5f');
    const r = await expectSameEveryTime(() =>
      call(c.client.listBackup.bind(c.client), { backupDir: dir, withTpmState: false }),
    );
    expect(r.exists).toBe(true);
    expect(r.files.map((f) => f.name).sort()).toEqual(['disk.0.0', 'vm.xml']);
    expect(Buffer.from(r.vmXml).toString('utf8')).toBe(
      Buffer.from('<VM><ID>803</ID></VM>').toString('base64'),
    );
    const missing = await call(c.client.listBackup.bind(c.client), {
      backupDir: ds('100/803/ffffffffffff'),
      withTpmState: false,
    });
    expect(missing.exists).toBe(false);
  });
  it('with_tpm_state: the vTPM archive as stored, checked against SHA256SUMS (DATA_LOSS CHECKSUM_MISMATCH otherwise)', async () => {
    c.tracker.track('100/811');
    const from = await backupTree(811);
    const archive = Buffer.from('a tar.gz of tpm/, as prebackup makes it');
    writeFileSync(c.local('0/811/backup/disk.tpm.0'), archive);
    const dir = ds('100/811/8a1b2c3d4e5f');
    await receiveBackup(from, dir);
    const r = await call(c.client.listBackup.bind(c.client), { backupDir: dir, withTpmState: true });
    expect(Buffer.from(r.tpmState)).toEqual(archive);
    const without = await call(c.client.listBackup.bind(c.client), { backupDir: dir, withTpmState: false });
    expect(without.tpmState).toHaveLength(0);
    writeFileSync(c.local('100/811/8a1b2c3d4e5f/disk.tpm.0'), Buffer.concat([archive, Buffer.from('!')]));
    await expectFailure(
      call(c.client.listBackup.bind(c.client), { backupDir: dir, withTpmState: true }),
      DATA_LOSS,
      'CHECKSUM_MISMATCH',
      /disk\.tpm\.0 does not match its SHA256SUMS/,
    );
  });
});

describe('RemoveBackups', () => {
  it('removes the directories and the <vmid>/ left empty; a repeat succeeds with nothing removed', async () => {
    const dir = await storedBackup(804, '2a1b2c3d4e5f');
    const first = await call(c.client.removeBackups.bind(c.client), { backupDirs: [dir] });
    expect(first.removed).toBe(1);
    expect(existsSync(c.local('100/804'))).toBe(false);
    const again = await call(c.client.removeBackups.bind(c.client), { backupDirs: [dir] });
    expect(again.removed).toBe(0);
  });

  it('refuses `..`, a path outside the roots or of another shape, and removes nothing', async () => {
    const dir = await storedBackup(805, '3a1b2c3d4e5f');
    await expectFailure(
      call(c.client.removeBackups.bind(c.client), { backupDirs: [dir, ds('100/805/../805')] }),
      INVALID_ARGUMENT,
      'UNSAFE_PATH',
    );
    await expectFailure(
      call(c.client.removeBackups.bind(c.client), { backupDirs: ['/etc/1/3a1b2c3d4e5f'] }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
    expect(existsSync(c.local('100/805/3a1b2c3d4e5f/disk.0.0'))).toBe(true);
  });
});

describe('OpenBackupChain', () => {
  it('offers a FULL file as it is, checked against SHA256SUMS; a corrupted byte is CHECKSUM_MISMATCH naming it', async () => {
    const dir = await storedBackup(806, '4a1b2c3d4e5f');
    const r = await call(c.client.openBackupChain.bind(c.client), {
      chain: [`${dir}/disk.0.0`],
      receiverName: AGENT_NAME,
      ttlSeconds: 0,
    });
    expect(r.ticket).not.toBe('');
    expect(r.virtualSize).toBe(4 * 1024 * 1024);
    const file = c.local('100/806/4a1b2c3d4e5f/disk.0.0');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    await expectFailure(
      call(c.client.openBackupChain.bind(c.client), {
        chain: [`${dir}/disk.0.0`],
        receiverName: AGENT_NAME,
        ttlSeconds: 0,
      }),
      DATA_LOSS,
      'CHECKSUM_MISMATCH',
      /disk\.0\.0/,
    );
  });

  it('merges a chain while checking it: a corrupted cluster in an increment is CHECKSUM_MISMATCH naming it, and no staging file is left', async () => {
    c.tracker.track('100');
    const chain = await fabricateChain(c.local('100/810'), c.local('100/810/.work'), [
      { bid: '7a1b2c3d4e5f', writes: [{ pattern: 0x41, offset: 0, length: 1024 * 1024 }] },
      { bid: '7a1b2c3d4e60', writes: [{ pattern: 0x42, offset: 1024 * 1024, length: 65536 }] },
    ]);
    const names = [ds('100/810/7a1b2c3d4e5f/disk.0.0'), ds('100/810/7a1b2c3d4e60/disk.0.1')];
    const merged = await call(c.client.openBackupChain.bind(c.client), {
      chain: names,
      receiverName: AGENT_NAME,
      ttlSeconds: 1,
    });
    expect(merged.ticket).not.toBe('');
    expect(merged.virtualSize).toBe(4 * 1024 * 1024);
    const stagedNames = (): string[] =>
      readdirSync(c.local('100/810')).filter((n) => n.startsWith('.') && n !== '.work');
    // The first call's merged file waits for its receiver under a dot-name.
    const before = stagedNames();
    expect(before).toHaveLength(1);
    // The increment's last cluster holds guest data (0x42): flip one of its bytes, header untouched.
    const inc = chain.files[1] as string;
    const bytes = readFileSync(inc);
    const at = bytes.lastIndexOf(0x42);
    expect(at).toBeGreaterThan(0);
    bytes[at] = 0x43;
    writeFileSync(inc, bytes);
    await expectFailure(
      call(c.client.openBackupChain.bind(c.client), {
        chain: names,
        receiverName: AGENT_NAME,
        ttlSeconds: 0,
      }),
      DATA_LOSS,
      'CHECKSUM_MISMATCH',
      /7a1b2c3d4e60\/disk\.0\.1/,
    );
    // The failed call's staging file is gone; the first one may have expired meanwhile.
    expect(stagedNames().filter((n) => !before.includes(n))).toEqual([]);
  });

  it('a missing file is NOT_FOUND; a path outside the roots is refused', async () => {
    const dir = await storedBackup(807, '5a1b2c3d4e5f');
    await expectFailure(
      call(c.client.openBackupChain.bind(c.client), {
        chain: [`${dir}/disk.1.0`],
        receiverName: AGENT_NAME,
        ttlSeconds: 0,
      }),
      NOT_FOUND,
      'NOT_FOUND',
    );
    await expectFailure(
      call(c.client.openBackupChain.bind(c.client), {
        chain: ['/etc/807/5a1b2c3d4e5f/disk.0.0'],
        receiverName: AGENT_NAME,
        ttlSeconds: 0,
      }),
      PERMISSION_DENIED,
      'PATH_OUTSIDE_ROOTS',
    );
  });
});

describe('FlattenBackups', () => {
  it('a single standalone backup is already flat: its files and SHA256SUMS are kept, a repeat answers the same', async () => {
    const dir = await storedBackup(808, '6a1b2c3d4e5f');
    const sums = readFileSync(c.local('100/808/6a1b2c3d4e5f/SHA256SUMS'), 'utf8');
    const r = await expectSameEveryTime(() =>
      call(c.client.flattenBackups.bind(c.client), { backupDirs: [dir] }),
    );
    expect(r.sizeMb).toBeGreaterThan(0);
    expect(readFileSync(c.local('100/808/6a1b2c3d4e5f/SHA256SUMS'), 'utf8')).toBe(sums);
  });

  it('a directory that is not <vmid>/<backup id> is refused', async () => {
    c.tracker.track('100');
    await mkdir(c.local('100/809'), { recursive: true });
    await expectFailure(
      call(c.client.flattenBackups.bind(c.client), { backupDirs: [ds('100/809/x')] }),
      INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    );
  });
});
