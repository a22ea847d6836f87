import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainFiles, parseBackupUrl } from '../common/src/backups/backup-url.js';
import { writeDatastoreXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { writeUserXml } from '../cli/src/demo/fake-oned/owned-objects.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import {
  backupImageXml,
  patternOf,
  restoreExtras,
  writeIncrement,
  type RepoIncrement,
} from './support/restore-repository.js';
import { actionData } from './support/ds-action-data.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';

// The backup datastore's `restore` through the installed shim, as one_datastore.rb runs it (request
// id as the argument, DS_DRIVER_ACTION_DATA in base64 on stdin), against a repository made by hand
// on a real backup server agent and the fake oned's allocate/chown/delete.
const BACKUP_DS = 100;
const DEST_DS = 1;
const VM = 42;
const BASE = `/var/lib/one//datastores/${BACKUP_DS}`;
let stack: Stack;

const cd = (name: string, value: string): string => `<${name}><![CDATA[${value}]]></${name}>`;
const VM_XML =
  `<VM><ID>${VM}</ID><NAME>web</NAME><TEMPLATE>${cd('CPU', '1')}${cd('MEMORY', '256')}` +
  `<DISK>${cd('DISK_ID', '0')}${cd('IMAGE_ID', '7')}${cd('SOURCE', '/x/abc')}${cd('TARGET', 'vda')}${cd('TYPE', 'FILE')}</DISK>` +
  `<DISK>${cd('DISK_ID', '1')}${cd('IMAGE_ID', '8')}${cd('TARGET', 'vdb')}${cd('TYPE', 'FILE')}</DISK>` +
  `<NIC>${cd('IP', '10.0.0.5')}${cd('MAC', '02:00:0a:00:00:05')}${cd('NETWORK', 'private')}${cd('NIC_ID', '0')}</NIC>` +
  `<GRAPHICS>${cd('PORT', '5942')}${cd('TYPE', 'VNC')}</GRAPHICS>${cd('VMID', String(VM))}</TEMPLATE><USER_TEMPLATE/></VM>`;
const FULL: RepoIncrement = { inc: 0, bid: '8a3454aa0001', disks: [0, 1], vmXml: VM_XML };
const INC1: RepoIncrement = { inc: 1, bid: 'f6e63eaa0002', disks: [0, 1], vmXml: VM_XML, tpm: true };

function restore(template: Record<string, string>, dest: number | null = DEST_DS): Promise<ActionRun> {
  const stdin = actionData({
    image: backupImageXml({ id: 30, vmId: VM, backupJobId: 3, increments: [FULL, INC1] }),
    datastore: {
      id: BACKUP_DS,
      type: 3,
      basePath: BASE,
      template: { DS_MAD: 'grpc_backup', GRPC_BACKUP_HOST: 'backup01' },
    },
    extra: restoreExtras(dest, template),
  });
  return runAction(stack.remotesDir, 'datastore', 'grpc_backup', 'restore', ['77'], stdin);
}

const allocated = (file: string): string => readFileSync(join(stack.fixturesDir, 'allocated', file), 'utf8');
const allocatedFiles = (): string[] => {
  const dir = join(stack.fixturesDir, 'allocated');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};
const attr = (tpl: string, name: string): string | undefined =>
  new RegExp(`^${name} = "([^"]*)"$`, 'm').exec(tpl)?.[1];

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'backup01'] });
  await writeDatastoreXml(stack.fixturesDir, { id: DEST_DS, dsMad: 'grpc', tmMad: 'grpc' });
  await writeDatastoreXml(stack.fixturesDir, {
    id: BACKUP_DS,
    type: 3,
    dsMad: 'grpc_backup',
    tmMad: '-',
    basePath: BASE,
    template: { GRPC_BACKUP_HOST: 'backup01' },
  });
  await writeUserXml(stack.fixturesDir, { id: 0, name: 'oneadmin', gid: 0 });
  await writeUserXml(stack.fixturesDir, { id: 5, name: 'alice', gid: 100 });
  const vmDir = stack.localPath('backup01', `/var/lib/one/datastores/${BACKUP_DS}/${VM}`);
  await writeIncrement(vmDir, FULL);
  await writeIncrement(vmDir, INC1, FULL);
});

afterAll(async () => {
  await stack?.stop();
});

describe('datastore grpc_backup restore', () => {
  it('registers one image per disk and a VM template pointing at them, owned by the user', async () => {
    const r = await restore({ USERNAME: 'alice' });
    const out = expectSuccess(r);
    const m = /^(\d+) (\d+) (\d+)\n$/.exec(out);
    expect(m, out).not.toBeNull();
    const [tid, i0, i1] = [m?.[1], m?.[2], m?.[3]];
    for (const [id, disk] of [
      [i0, 0],
      [i1, 1],
    ] as const) {
      const tpl = allocated(`image-${id}.tpl`);
      expect(attr(tpl, 'NAME')).toBe(`${VM}-${INC1.bid}-disk-${disk}`);
      expect(attr(tpl, 'TYPE')).toBe(disk === 0 ? 'OS' : 'DATABLOCK');
      expect(attr(tpl, 'FROM_BACKUP_DS')).toBe(String(BACKUP_DS));
      expect(attr(tpl, 'BACKUP_JOB_ID')).toBe('3');
      const url = parseBackupUrl(attr(tpl, 'PATH') ?? '');
      expect(url).toMatchObject({ dsId: BACKUP_DS, backupJobId: 3, vmId: VM, diskId: disk });
      expect(url.chain).toEqual([
        { inc: 0, bid: FULL.bid },
        { inc: 1, bid: INC1.bid },
      ]);
      for (const f of chainFiles(url)) expect(existsSync(stack.localPath('backup01', f)), f).toBe(true);
      expect(allocated(`image-${id}.owner`)).toBe('UID=5 GID=100\n');
    }
    const vmTpl = allocated(`template-${tid}.tpl`);
    expect(attr(vmTpl, 'NAME')).toBe(`${VM}-${INC1.bid}`);
    expect(vmTpl).toContain(`IMAGE_ID = "${i0}"`);
    expect(vmTpl).toContain(`IMAGE_ID = "${i1}"`);
    expect(vmTpl).toContain('IP = "10.0.0.5"');
    expect(vmTpl).not.toMatch(/VMID|NIC_ID|PORT|SOURCE|IMAGE_ID = "[78]"|MAC/);
    expect(allocated(`template-${tid}.owner`)).toBe('UID=5 GID=100\n');
    // The vTPM state archive, as stored, base64 in TPM_STATE (reference: OpenNebula's restore).
    const tpm = readFileSync(
      stack.localPath('backup01', `/var/lib/one/datastores/${BACKUP_DS}/${VM}/${INC1.bid}/disk.tpm.0`),
    );
    expect(attr(vmTpl, 'TPM_STATE')).toBe(tpm.toString('base64'));
  });

  it("the PATH it registers is what the image datastore's cp restores, the chain merged", async () => {
    const id = /^\d+ (\d+) /.exec(expectSuccess(await restore({})))?.[1];
    const path = attr(allocated(`image-${id}.tpl`), 'PATH') ?? '';
    const cp = await dsAction(
      stack,
      'cp',
      Number(id),
      actionData({ image: { id: Number(id), path, format: 'raw', size: 4 }, datastore: { id: DEST_DS } }),
    );
    const [source, format] = expectSuccess(cp).trimEnd().split(' ');
    expect(format).toBe('qcow2');
    const file = stack.localPath('frontend', source as string);
    // Each point's bytes, read from the registered (standalone) image with its format given.
    for (const inc of [0, 1]) {
      await runTool('qemu-io', [
        '-f',
        'qcow2',
        '-c',
        `read -q -P ${patternOf(inc)} ${inc * 65536} 64k`,
        file,
      ]);
    }
  });

  it('DISK_ID restores one disk of an older point as an image, and no template', async () => {
    const r = await restore({ USERNAME: 'alice', INCREMENT_ID: '0', DISK_ID: '1', NAME: 'old data' });
    const m = /^-1 (\d+)\n$/.exec(expectSuccess(r));
    expect(m).not.toBeNull();
    const tpl = allocated(`image-${m?.[1]}.tpl`);
    expect(attr(tpl, 'NAME')).toBe('old data-disk-1');
    const url = parseBackupUrl(attr(tpl, 'PATH') ?? '');
    expect(url.chain).toEqual([{ inc: 0, bid: FULL.bid }]);
    expect(url.path).toBe(`/var/lib/one/datastores/${BACKUP_DS}/${VM}/${FULL.bid}/disk.1.0`);
  });

  it('NO_IP keeps the NIC without its addresses; NO_NIC drops it; no USERNAME keeps our user', async () => {
    const noIp = /^(\d+) /.exec(expectSuccess(await restore({ NO_IP: 'YES' })))?.[1];
    const t = allocated(`template-${noIp}.tpl`);
    expect(t).toMatch(/^NIC = \[\n {2}NETWORK = "private" \]$/m);
    expect(existsSync(join(stack.fixturesDir, 'allocated', `template-${noIp}.owner`))).toBe(false);
    const noNic = /^(\d+) /.exec(expectSuccess(await restore({ NO_NIC: 'yes' })))?.[1];
    expect(allocated(`template-${noNic}.tpl`)).not.toMatch(/^NIC/m);
  });

  it('a failed template allocation deletes the images it made, and a retry succeeds', async () => {
    mkdirSync(join(stack.fixturesDir, 'refuse'), { recursive: true });
    const refusal = join(stack.fixturesDir, 'refuse', 'one.template.allocate');
    writeFileSync(refusal, '[one.template.allocate] Not enough quota\n');
    const before = allocatedFiles().filter((f) => f.endsWith('.tpl'));
    try {
      const line = expectFailure(
        await restore({ USERNAME: 'alice' }),
        /backup image 30: restore failed: .*Not enough quota \(deleted image \d+, image \d+\)$/,
      );
      expect(line).not.toContain('could not delete');
      expect(allocatedFiles().filter((f) => f.endsWith('.tpl'))).toEqual(before);
    } finally {
      rmSync(refusal);
    }
    expect(expectSuccess(await restore({ USERNAME: 'alice' }))).toMatch(/^\d+ \d+ \d+\n$/);
  });

  it('refuses bad input in one line, creating nothing', async () => {
    const before = allocatedFiles();
    const cases: Array<[Record<string, string>, number | null, RegExp]> = [
      [{ USERNAME: 'mallory' }, DEST_DS, /TEMPLATE\/USERNAME "mallory" is no oned user$/],
      [{}, null, /DESTINATION_DS_ID is missing or not an id: ""$/],
      [{ DISK_ID: '7' }, DEST_DS, /backup f6e63eaa0002 has no disk 7 \(it has 0, 1\)$/],
      [{ INCREMENT_ID: '5' }, DEST_DS, /backup has no increment 5 \(it has 0, 1\)$/],
      [{ DISK_ID: 'x' }, DEST_DS, /TEMPLATE\/DISK_ID is not an id: "x"$/],
      [{}, 555, /\[one\.image\.allocate\] Error getting datastore \[555\]\. \(nothing was created\)$/],
    ];
    for (const [template, dest, pattern] of cases) expectFailure(await restore(template, dest), pattern);
    expect(allocatedFiles()).toEqual(before);
  });

  it('a vTPM archive that does not match SHA256SUMS fails the restore in one line, creating nothing', async () => {
    const tpm = stack.localPath(
      'backup01',
      `/var/lib/one/datastores/${BACKUP_DS}/${VM}/${INC1.bid}/disk.tpm.0`,
    );
    const kept = readFileSync(tpm);
    const before = allocatedFiles();
    writeFileSync(tpm, Buffer.concat([kept, Buffer.from('x')]));
    try {
      expectFailure(
        await restore({}),
        new RegExp(
          `list backup backup01:/var/lib/one/datastores/${BACKUP_DS}/${VM}/${INC1.bid}: disk\\.tpm\\.0 does not match its SHA256SUMS`,
        ),
      );
      expect(allocatedFiles()).toEqual(before);
    } finally {
      writeFileSync(tpm, kept);
    }
    // One disk only: no template, so the archive is not read.
    writeFileSync(tpm, Buffer.concat([kept, Buffer.from('x')]));
    try {
      expect(expectSuccess(await restore({ DISK_ID: '1' }))).toMatch(/^-1 \d+\n$/);
    } finally {
      writeFileSync(tpm, kept);
    }
  });

  it('names a missing backup directory and its host', async () => {
    const vmDir = stack.localPath('backup01', `/var/lib/one/datastores/${BACKUP_DS}/${VM}`);
    const moved = join(vmDir, `.${INC1.bid}.away`);
    renameSync(join(vmDir, INC1.bid), moved);
    try {
      expectFailure(
        await restore({}),
        new RegExp(`backup ${INC1.bid} is missing: no backup01:/var/lib/one/datastores/100/42/${INC1.bid}$`),
      );
    } finally {
      renameSync(moved, join(vmDir, INC1.bid));
    }
  });
});
