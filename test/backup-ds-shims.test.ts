// The backup datastore driver `grpc_backup` through the installed shims, as the VMM driver and oned
// run it (docs/backups.md#the-backup-datastore): a fabricated `<vmdir>/backup/` (qcow2 files from
// qemu-img, base64 vm.xml) on host01 goes to the backup server backup01 with `backup`, then `ls`,
// `stat` (of both datastores), `monitor` and `rm`; `backup_cancel` stops an upload in flight; bad
// input is one line each. No VM runs here: the hooks that build `backup/` are tested elsewhere.
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION as LOC, Stack } from '../cli/src/demo/stack.js';
import {
  datastoreXml,
  vmXml,
  writeDatastoreXml,
  type DatastoreFixture,
} from '../cli/src/demo/fake-oned/fixtures.js';
import { parseBackupUrl } from '../common/src/backups/backup-url.js';
import { expectOneLineFailure } from './support/assertions.js';
import { appearsWhile, humanLines, sha256File } from './support/files.js';
import { backupVm, fabricateBackup, type BackupDisk } from './support/backup-repo.js';

const DS: DatastoreFixture = {
  id: 100,
  type: 3,
  dsMad: 'grpc_backup',
  tmMad: '-',
  template: { GRPC_BACKUP_HOST: 'backup01' },
};
const BASE = `${LOC}/100`;
const VM = 42;
const VM_DIR = `${LOC}/0/${VM}`;
const FULL: BackupDisk[] = [
  { diskId: 0, inc: 0, sizeMb: 64, dataMb: 4, pattern: 0x41 },
  { diskId: 1, inc: 0, sizeMb: 32, dataMb: 1, pattern: 0x42 },
];
const INC: BackupDisk[] = [
  { diskId: 0, inc: 1, sizeMb: 64, dataMb: 2, pattern: 0x43 },
  { diskId: 1, inc: 1, sizeMb: 32, dataMb: 1, pattern: 0x44 },
];
const vm = backupVm(VM, [
  { diskId: 0, sizeMb: 64 },
  { diskId: 1, sizeMb: 32 },
]);

let stack: Stack;
const ds = (action: string, args: string[], stdin?: string): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'datastore', 'grpc_backup', action, args, stdin);
const local = (host: string, path: string): string => stack.localPath(host, path);

/** The backup action's raw stdin: the backup datastore and the VM (one_vmm_exec.rb's heredoc). */
const backupStdin = (d: DatastoreFixture = DS, vmId = VM): string =>
  `<DS_DRIVER_ACTION_DATA>${datastoreXml(d)}${vmXml({ ...vm, id: vmId })}</DS_DRIVER_ACTION_DATA>`;

/** A BACKUP image of VM 42 whose increments are `ids` (oldest first), as oned keeps it. */
function backupImage(ids: readonly string[], bj?: number): string {
  const incs = ids
    .map(
      (bid, i) =>
        `<INCREMENT><DATE>0</DATE><ID>${i}</ID><PARENT_ID>${i - 1}</PARENT_ID><SIZE>10</SIZE><SOURCE><![CDATA[${bid}]]></SOURCE><TYPE><![CDATA[${i === 0 ? 'FULL' : 'INCREMENT'}]]></TYPE></INCREMENT>`,
    )
    .join('');
  return (
    `<IMAGE><ID>9</ID><NAME>backup</NAME><TYPE>6</TYPE><SOURCE><![CDATA[${ids[0]}]]></SOURCE><FORMAT>raw</FORMAT>` +
    `<DATASTORE_ID>100</DATASTORE_ID><VMS><ID>${VM}</ID></VMS><BACKUP_INCREMENTS>${incs}</BACKUP_INCREMENTS>` +
    `<TEMPLATE>${bj === undefined ? '' : `<BACKUP_JOB_ID>${bj}</BACKUP_JOB_ID>`}</TEMPLATE></IMAGE>`
  );
}
const actionData = (inner: string): string => `<DS_DRIVER_ACTION_DATA>${inner}</DS_DRIVER_ACTION_DATA>`;
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const statStdin = (path: string): string =>
  b64(
    actionData(
      `<IMAGE><PATH><![CDATA[${path}]]></PATH></IMAGE>${datastoreXml({ id: 1, tmMad: 'grpc', dsMad: 'grpc' })}`,
    ),
  );

function stdoutOf(r: ActionRun): string {
  expect(humanLines(r.stderr), `${r.command}\n${r.stderr}`).toEqual([]);
  expect(r.code, `${r.command}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01', 'backup01'] });
  await writeDatastoreXml(stack.fixturesDir, DS);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('backup -> ls -> stat -> monitor -> rm', () => {
  const ids: string[] = [];

  it('backup uploads backup/ (six arguments, then the guide five) and prints `<id> <MiB> raw`', async () => {
    for (const [disks, args] of [
      [FULL, [`host01:${VM_DIR}`, '0:1', `one-${VM}`, '-', `${VM}`, '0']],
      [INC, [`host01:${VM_DIR}`, '0:1', `one-${VM}`, `${VM}`, '0']],
    ] as const) {
      await rm(local('host01', `${VM_DIR}/backup`), { recursive: true, force: true });
      const src = await fabricateBackup(local('host01', VM_DIR), vm, disks);
      const out = stdoutOf(await ds('backup', [...args], backupStdin()));
      const m = /^([0-9a-f]{12}) (\d+) raw\n$/.exec(out);
      expect(m, out).not.toBeNull();
      const [, id, size] = m as RegExpExecArray;
      ids.push(id as string);
      const dir = local('backup01', `${BASE}/${VM}/${id}`);
      const names = disks.map((d) => `disk.${d.diskId}.${d.inc}`);
      expect((await readdir(dir)).sort()).toEqual(['SHA256SUMS', ...names, 'vm.xml'].sort());
      for (const f of [...names, 'vm.xml'])
        expect(await sha256File(`${dir}/${f}`)).toBe(await sha256File(`${src}/${f}`));
      expect(await readFile(`${dir}/SHA256SUMS`, 'utf8')).toContain(
        `${await sha256File(`${src}/disk.0.${disks[0]?.inc}`)}  disk.0.`,
      );
      expect(Number(size)).toBeGreaterThan(0);
    }
    expect((await readdir(local('backup01', `${BASE}/${VM}`))).sort()).toEqual([...ids].sort());
  }, 60_000);

  it('ls prints the disks of the last increment, or of -i <id>, as pseudo-URLs; raw or base64 stdin', async () => {
    const data = actionData(`${datastoreXml(DS)}${vmXml(vm)}${backupImage(ids, 3)}`);
    const chain = `0:${ids[0]},1:${ids[1]}`;
    const last = JSON.parse(stdoutOf(await ds('ls', [], data))) as Record<string, string>;
    expect(last).toEqual({
      '0': `grpc_backup://100/3/${chain}${BASE}/${VM}/${ids[1]}/disk.0.1`,
      '1': `grpc_backup://100/3/${chain}${BASE}/${VM}/${ids[1]}/disk.1.1`,
    });
    for (const url of Object.values(last)) expect(parseBackupUrl(url).chain).toHaveLength(2);
    const first = JSON.parse(stdoutOf(await ds('ls', ['-i', '0'], b64(data)))) as Record<string, string>;
    expect(first['0']).toBe(`grpc_backup://100/3/0:${ids[0]}${BASE}/${VM}/${ids[0]}/disk.0.0`);
    expectOneLineFailure(
      await ds('ls', ['-i', '7'], data),
      /image 9: backup has no increment 7 \(it has 0, 1\)/,
    );
  });

  it('stat of a disk URL, in the backup datastore and in an image datastore, is its DISK/SIZE', async () => {
    const chain = `0:${ids[0]},1:${ids[1]}`;
    for (const [disk, size] of [
      [0, '64\n'],
      [1, '32\n'],
    ] as const) {
      const url = `grpc_backup://100//${chain}${BASE}/${VM}/${ids[1]}/disk.${disk}.1`;
      expect(stdoutOf(await ds('stat', ['0'], statStdin(url)))).toBe(size);
      expect(
        stdoutOf(await runAction(stack.remotesDir, 'datastore', 'grpc', 'stat', ['0'], statStdin(url))),
      ).toBe(size);
    }
    const outside = `grpc_backup://100//0:${ids[0]}${LOC}/5/${VM}/${ids[0]}/disk.0.0`;
    expectOneLineFailure(await ds('stat', ['0'], statStdin(outside)), /is not a backup of datastore 100/);
    const gone = `grpc_backup://100//0:abcdef012345${BASE}/${VM}/abcdef012345/disk.0.0`;
    expectOneLineFailure(await ds('stat', ['0'], statStdin(gone)), /NOT_FOUND|is not on backup01/);
  });

  it('monitor prints the backup server capacity in plain MiB', async () => {
    const out = stdoutOf(await ds('monitor', ['100'], b64(actionData(datastoreXml(DS)))));
    const m = /^USED_MB=(\d+)\nTOTAL_MB=(\d+)\nFREE_MB=(\d+)\n$/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m?.[2])).toBeGreaterThan(0);
  });

  it('rm removes every increment and the VM directory; a repeat succeeds', async () => {
    const data = b64(actionData(`${backupImage(ids)}${datastoreXml(DS)}`));
    stdoutOf(await ds('rm', ['9'], data));
    expect(existsSync(local('backup01', `${BASE}/${VM}`))).toBe(false);
    expect(stdoutOf(await ds('rm', ['9'], data))).toBe('');
    expectOneLineFailure(
      await ds('ls', [], actionData(`${datastoreXml(DS)}${backupImage(ids)}`)),
      /is not on backup01/,
    );
  });
});

describe('LAST_BRIDGE', () => {
  it('backup takes backup/ from BACKUP_CONFIG/LAST_BRIDGE when it is set', async () => {
    const id = 44;
    const dir = `${LOC}/0/${id}`;
    const bridged = backupVm(id, [{ diskId: 0, sizeMb: 16 }]);
    await fabricateBackup(local('frontend', dir), bridged, [
      { diskId: 0, inc: 0, sizeMb: 16, dataMb: 1, pattern: 0x46 },
    ]);
    expect(existsSync(local('host01', dir))).toBe(false);
    const stdin = `<DS_DRIVER_ACTION_DATA>${datastoreXml(DS)}${vmXml({ ...bridged, backupConfig: { LAST_BRIDGE: 'frontend' } })}</DS_DRIVER_ACTION_DATA>`;
    const out = stdoutOf(await ds('backup', [`host01:${dir}`, '0', `one-${id}`, '-', `${id}`, '0'], stdin));
    const backupId = out.split(' ')[0] ?? '';
    expect(await sha256File(local('backup01', `${BASE}/${id}/${backupId}/disk.0.0`))).toBe(
      await sha256File(local('frontend', `${dir}/backup/disk.0.0`)),
    );
  });
});

describe('backup_cancel', () => {
  it('stops the upload in flight: the backup fails, nothing of it is on the backup server', async () => {
    const id = 43;
    const dir = `${LOC}/0/${id}`;
    await fabricateBackup(local('host01', dir), backupVm(id, [{ diskId: 0, sizeMb: 1024 }]), [
      { diskId: 0, inc: 0, sizeMb: 1024, dataMb: 768, pattern: 0x45 },
    ]);
    const running = ds('backup', [`host01:${dir}`, '0', `one-${id}`, '-', `${id}`, '0'], backupStdin(DS, id));
    const vmRepo = local('backup01', `${BASE}/${id}`);
    expect(await appearsWhile(vmRepo, running)).toBe(true);
    const cancel = await ds('backup_cancel', [`host01:${dir}`, `one-${id}`], vmXml({ ...vm, id }));
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stderr).toMatch(new RegExp(`upload of VM ${id}'s backup stopped`));
    const r = await running;
    expect(r.code).not.toBe(0);
    expect(humanLines(r.stderr)).toHaveLength(1);
    expect(existsSync(vmRepo)).toBe(false);
  }, 60_000);
});

describe('bad input: one line each', () => {
  const args = [`host01:${VM_DIR}`, '0:1', `one-${VM}`, '-', `${VM}`, '0'];
  it.each([
    [
      'no GRPC_BACKUP_HOST',
      () => backupStdin({ ...DS, template: {} }),
      /datastore 100: TEMPLATE\/GRPC_BACKUP_HOST is missing/,
    ],
    [
      'an unknown host',
      () => backupStdin({ ...DS, template: { GRPC_BACKUP_HOST: 'nosuchhost' } }),
      /datastore 100: GRPC_BACKUP_HOST names .*nosuchhost/,
    ],
    ['malformed XML', () => '<DS_DRIVER_ACTION_DATA><DATASTORE>', /^backup failed: stdin: .*malformed/],
    ['no VM', () => actionData(datastoreXml(DS)), /stdin: \/DS_DRIVER_ACTION_DATA\/VM is missing/],
    ['another VM', () => backupStdin(DS, 41), /is VM 41, not VM 42/],
  ])('backup with %s', async (_what, stdin, pattern) => {
    expectOneLineFailure(await ds('backup', args, stdin()), pattern);
  });

  it('ls with a bad option, monitor of a datastore without GRPC_BACKUP_HOST', async () => {
    expectOneLineFailure(
      await ds('ls', ['-x', '1'], actionData(datastoreXml(DS))),
      /expected no arguments or -i <increment id>/,
    );
    expectOneLineFailure(
      await ds('monitor', ['100'], b64(actionData(datastoreXml({ ...DS, template: {} })))),
      /GRPC_BACKUP_HOST is missing/,
    );
  });
});
