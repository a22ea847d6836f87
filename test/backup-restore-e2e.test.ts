// A VM backed up through the `grpc_backup` datastore and restored through OpenNebula's own call
// sequence (docs/backups.md): real running TCG domains with known data written between backups,
// FULL then three CBT increments (prebackup_live, datastore backup, postbackup_live), then every
// point restored three ways: RESTORE (images and a template allocated through the fake oned's API),
// the image datastore's stat and cp of the pseudo-URLs, and TM restore into the powered-off VM;
// each compared byte for byte with what the disk held at that point. Then increment_flatten with
// KEEP_LAST, the oldest kept point restored, monitor and rm. Both TM drivers; the VM has two disks
// and only disk 0 is backed up.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  datastoreXml,
  writeDatastoreXml,
  writeImageXml,
  writeVmXml,
  vmXml,
  type BackupIncrementFixture,
  type DatastoreFixture,
  type VmFixture,
} from '../cli/src/demo/fake-oned/fixtures.js';
import { writeUserXml } from '../cli/src/demo/fake-oned/owned-objects.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { parseBackupUrl } from '../common/src/backups/backup-url.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { MIB } from '../common/src/units.js';
import { expectOk } from './support/assertions.js';
import { snapshotContent } from './support/backup-chain.js';
import { actionData } from './support/ds-action-data.js';
import { humanLines, imagesIdentical } from './support/files.js';
import { destroyIfRunning, ensureLibvirt, startDomain, type TestDomain } from './support/libvirt.js';

const HOST = 'host01';
const BACKUP_HOST = 'backup01';
const SYSTEM_DS = 0;
const IMAGE_DS = 1;
const BACKUP_DS = 100;
const BACKUP_BASE = `${ONED_DATASTORE_LOCATION}/${BACKUP_DS}`;
const DISK_MB = 64;

let stack: Stack;
const domains: TestDomain[] = [];

const backupDs: DatastoreFixture = {
  id: BACKUP_DS,
  type: 3,
  dsMad: 'grpc_backup',
  tmMad: '-',
  basePath: BACKUP_BASE,
  template: { GRPC_BACKUP_HOST: BACKUP_HOST },
};
const imageDs: DatastoreFixture = {
  id: IMAGE_DS,
  dsMad: 'grpc',
  tmMad: 'grpc',
  basePath: `${ONED_DATASTORE_LOCATION}/${IMAGE_DS}`,
};

const shim = (
  kind: 'tm' | 'datastore',
  driver: string,
  action: string,
  args: string[],
  stdin: string,
): Promise<ActionRun> => runAction(stack.remotesDir, kind, driver, action, args, stdin);

/** stdout of a successful run (stderr shown when it failed). */
function ok(r: ActionRun): string {
  expect(humanLines(r.stderr), r.command).toEqual([]);
  expect(r.code, `${r.command}\n${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

interface Vm {
  id: number;
  tm: 'grpc' | 'grpc_qcow2';
  onedDir: string;
  dir: string;
  domain: string;
  expected: string;
  fixture(lcmState: number, backupConfig: Record<string, string | number>): VmFixture;
}

function newVm(id: number, tm: 'grpc' | 'grpc_qcow2'): Vm {
  const onedDir = `${ONED_DATASTORE_LOCATION}/${SYSTEM_DS}/${id}`;
  return {
    id,
    tm,
    onedDir,
    dir: stack.localPath(HOST, onedDir),
    domain: `one-bke2e${id}`,
    expected: join(stack.baseDir, 'expected', String(id)),
    fixture: (lcmState, backupConfig) => ({
      id,
      deployId: `one-bke2e${id}`,
      lcmState,
      state: lcmState === 0 ? 8 : 3,
      disks: [0, 1].map((diskId) => ({
        diskId,
        imageId: 10 + diskId,
        format: 'qcow2',
        tmMad: tm,
        size: DISK_MB,
        target: diskId === 0 ? 'vda' : 'vdb',
        source: `${ONED_DATASTORE_LOCATION}/${IMAGE_DS}/base${diskId}`,
      })),
      history: [{ hostname: HOST, dsId: SYSTEM_DS, tmMad: tm }],
      backupConfig,
    }),
  };
}

/** The VM's disks as TM clone leaves them: qcow2 files (local) or the .snap/0 layout (shared). */
async function makeDisks(vm: Vm): Promise<void> {
  await mkdir(vm.dir, { recursive: true });
  await mkdir(vm.expected, { recursive: true });
  for (const d of [0, 1]) {
    const disk = join(vm.dir, `disk.${d}`);
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', disk, `${DISK_MB}M`]);
    await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -P ${0x40 + d} 0 8M`, disk]);
  }
}

async function backupOnce(
  vm: Vm,
  dom: TestDomain,
  lastIncrement: number,
): Promise<{ bid: string; sizeMb: number }> {
  const config = { MODE: 'INCREMENT', INCREMENT_MODE: 'CBT', LAST_INCREMENT_ID: lastIncrement, KEEP_LAST: 0 };
  const xml = vmXml(vm.fixture(3, config));
  await writeVmXml(stack.fixturesDir, vm.fixture(3, config));
  const args = [`${HOST}:${vm.onedDir}`, '0', vm.domain, '-', String(vm.id), String(SYSTEM_DS)];
  expectOk(await shim('tm', vm.tm, 'prebackup_live', args, xml));
  const dsData = `<DS_DRIVER_ACTION_DATA>${datastoreXml(backupDs)}${xml}</DS_DRIVER_ACTION_DATA>`;
  const out = ok(await shim('datastore', 'grpc_backup', 'backup', args, dsData));
  expectOk(await shim('tm', vm.tm, 'postbackup_live', args, xml));
  const m = /^([0-9a-f]{6,32}) (\d+) raw$/.exec(out);
  expect(m, `backup stdout ${JSON.stringify(out)}`).not.toBeNull();
  expect(await dom.state()).toBe('running');
  return { bid: m?.[1] ?? '', sizeMb: Number(m?.[2]) };
}

/** The base64 DS_DRIVER_ACTION_DATA oned sends a backup datastore action for backup image `imageId`. */
function backupImageData(imageId: number, extra = ''): string {
  return Buffer.from(
    `<DS_DRIVER_ACTION_DATA>${backupImageXml(imageId)}${datastoreXml(backupDs)}${extra}</DS_DRIVER_ACTION_DATA>`,
  ).toString('base64');
}

/** The BACKUP image as the fake oned serves it (writeBackupImage wrote it). */
function backupImageXml(imageId: number): string {
  return readFileSync(join(stack.fixturesDir, 'image', `${imageId}.xml`), 'utf8');
}

async function writeBackupImage(
  vm: Vm,
  imageId: number,
  incs: readonly BackupIncrementFixture[],
): Promise<void> {
  await writeImageXml(stack.fixturesDir, {
    id: imageId,
    name: `backup-${vm.id}`,
    source: incs[0]?.source ?? '',
    format: 'raw',
    size: DISK_MB,
    type: 6,
    datastoreId: BACKUP_DS,
    datastore: 'backups',
    vms: [vm.id],
    backupIncrements: incs,
    template: { BACKUP_JOB_ID: '' },
  });
}

/** Restores point `inc` through RESTORE, then stat + cp of the allocated image's PATH; compares. */
async function restoreThroughImageDs(
  vm: Vm,
  imageId: number,
  incs: readonly BackupIncrementFixture[],
  inc: number,
): Promise<void> {
  const extra = `<DESTINATION_DS_ID>${IMAGE_DS}</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME><NAME>r${vm.id}-${inc}</NAME><INCREMENT_ID>${inc}</INCREMENT_ID><DISK_ID>0</DISK_ID></TEMPLATE>`;
  const out = ok(await shim('datastore', 'grpc_backup', 'restore', ['7'], backupImageData(imageId, extra)));
  const [template, image, ...more] = out.split(' ');
  expect(template).toBe('-1');
  expect(more).toEqual([]);
  const tpl = await readFile(join(stack.fixturesDir, 'allocated', `image-${image}.tpl`), 'utf8');
  const path = /PATH\s*=\s*"([^"]+)"/.exec(tpl)?.[1] ?? '';
  const url = parseBackupUrl(path);
  expect(url.chain.map((l) => l.inc)).toEqual(incs.filter((i) => i.id <= inc).map((i) => i.id));
  expect(url.diskId).toBe(0);
  // oned measures the PATH with the backup datastore's stat, then registers it with cp.
  const statData = Buffer.from(
    `<DS_DRIVER_ACTION_DATA><IMAGE><PATH>${path}</PATH></IMAGE>${datastoreXml(backupDs)}</DS_DRIVER_ACTION_DATA>`,
  ).toString('base64');
  expect(Number(ok(await shim('datastore', 'grpc_backup', 'stat', ['8'], statData)))).toBe(DISK_MB);
  const cpData = actionData({
    image: { id: Number(image), path, format: 'qcow2', size: DISK_MB, type: 0 },
    datastore: { id: IMAGE_DS, basePath: `${ONED_DATASTORE_LOCATION}/${IMAGE_DS}` },
  });
  const [source, format] = ok(await shim('datastore', 'grpc', 'cp', [String(image)], cpData)).split(' ');
  expect(format).toBe('qcow2');
  expect(
    await imagesIdentical(
      stack.localPath('frontend', source ?? ''),
      'qcow2',
      join(vm.expected, `${inc}.raw`),
      'raw',
    ),
  ).toBe(true);
}

/** TM restore of point `inc` into the powered-off VM; disk 0 must hold it, disk 1 be untouched. */
async function restoreThroughTm(vm: Vm, imageId: number, inc: number): Promise<void> {
  await writeVmXml(stack.fixturesDir, vm.fixture(0, {}));
  const disk1Before = join(vm.expected, 'disk1.raw');
  await snapshotContent(join(vm.dir, 'disk.1'), 'qcow2', disk1Before);
  expectOk(
    await shim(
      'tm',
      vm.tm,
      'restore',
      [`${HOST}:${vm.onedDir}`, String(vm.id), String(imageId), String(inc), '-1'],
      '',
    ),
  );
  expect(await imagesIdentical(join(vm.dir, 'disk.0'), 'qcow2', join(vm.expected, `${inc}.raw`), 'raw')).toBe(
    true,
  );
  expect(await imagesIdentical(join(vm.dir, 'disk.1'), 'qcow2', disk1Before, 'raw')).toBe(true);
  if (vm.tm === 'grpc_qcow2') expect(readlinkSync(join(vm.dir, 'disk.0'))).toMatch(/disk\.0\.snap\/0$/);
  else expect(existsSync(join(vm.dir, 'disk.0.snap'))).toBe(false);
  const info = JSON.parse(
    (await runTool('qemu-img', ['info', '--output', 'json', '-f', 'qcow2', join(vm.dir, 'disk.0')])).stdout,
  ) as {
    'format-specific'?: { data?: { bitmaps?: unknown[] } };
  };
  expect(info['format-specific']?.data?.bitmaps ?? []).toEqual([]);
}

beforeAll(async () => {
  await ensureLibvirt();
  stack = await Stack.start({ hosts: ['frontend', HOST, BACKUP_HOST] });
  await chmod(stack.baseDir, 0o755);
  await writeDatastoreXml(stack.fixturesDir, backupDs);
  await writeDatastoreXml(stack.fixturesDir, imageDs);
  await writeUserXml(stack.fixturesDir, { id: 5, name: 'alice', gid: 100 });
}, 120_000);

afterAll(async () => {
  for (const d of domains) await d.destroy();
  await stack?.stop();
});

describe.each([
  { tm: 'grpc' as const, vmId: 700, imageId: 70 },
  { tm: 'grpc_qcow2' as const, vmId: 710, imageId: 71 },
])('backup and restore through grpc_backup with TM $tm', ({ tm, vmId, imageId }) => {
  const incs: BackupIncrementFixture[] = [];
  let vm: Vm;

  it('FULL and three increments of a running VM, each a complete directory on the backup server', async () => {
    vm = newVm(vmId, tm);
    await makeDisks(vm);
    await destroyIfRunning(vm.domain);
    const dom = await startDomain(
      vm.domain,
      [
        { target: 'vda', path: join(vm.dir, 'disk.0'), format: 'qcow2' },
        { target: 'vdb', path: join(vm.dir, 'disk.1'), format: 'qcow2' },
      ],
      vm.dir,
    );
    domains.push(dom);
    const writes: Array<[number, number, number]> = [
      [0x51, 1 * MIB, 2 * MIB],
      [0x52, 16 * MIB, 1 * MIB],
      [0x53, 0, 512 * 1024],
      [0x54, 40 * MIB, 3 * MIB],
    ];
    for (const [i, [pattern, offset, length]] of writes.entries()) {
      await dom.write('vda', pattern, offset, length);
      await dom.write('vdb', pattern + 0x10, offset, length);
      await snapshotContent(join(vm.dir, 'disk.0'), 'qcow2', join(vm.expected, `${i}.raw`));
      const { bid, sizeMb } = await backupOnce(vm, dom, i - 1);
      incs.push({ id: i, type: i === 0 ? 'FULL' : 'INCREMENT', source: bid, size: sizeMb });
      const dir = stack.localPath(BACKUP_HOST, `${BACKUP_BASE}/${vm.id}/${bid}`);
      expect(readdirSync(dir).sort()).toEqual([`disk.0.${i}`, 'SHA256SUMS', 'vm.xml'].sort());
    }
    expect(
      readdirSync(stack.localPath(BACKUP_HOST, `${BACKUP_BASE}/${vm.id}`)).filter((n) => n.startsWith('.')),
    ).toEqual([]);
    await writeBackupImage(vm, imageId, incs);
    await dom.destroy();
  }, 600_000);

  it('ls lists disk 0 of each point as a pseudo-URL of its chain', async () => {
    expect(incs).toHaveLength(4);
    for (const inc of incs) {
      const raw = `<DS_DRIVER_ACTION_DATA>${backupImageXml(imageId)}${datastoreXml(backupDs)}${vmXml(vm.fixture(0, {}))}</DS_DRIVER_ACTION_DATA>`;
      const listed = JSON.parse(
        ok(await shim('datastore', 'grpc_backup', 'ls', ['-i', String(inc.id)], raw)),
      ) as Record<string, string>;
      expect(Object.keys(listed)).toEqual(['0']);
      expect(parseBackupUrl(listed['0'] ?? '').chain.map((l) => l.bid)).toEqual(
        incs.filter((i) => i.id <= inc.id).map((i) => i.source),
      );
    }
  });

  it('every point restores through RESTORE + image stat and cp, and through TM restore', async () => {
    expect(incs).toHaveLength(4);
    for (const inc of incs) {
      await restoreThroughImageDs(vm, imageId, incs, inc.id);
      await restoreThroughTm(vm, imageId, inc.id);
    }
  }, 600_000);

  it('increment_flatten with KEEP_LAST=2 merges on the backup server; the oldest kept point still restores', async () => {
    const extra = '<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>';
    const out = ok(
      await shim(
        'datastore',
        'grpc_backup',
        'increment_flatten',
        [String(imageId)],
        backupImageData(imageId, extra),
      ),
    );
    const m = /^(\d+) (\S+)$/.exec(out);
    expect(m, `increment_flatten stdout ${JSON.stringify(out)}`).not.toBeNull();
    const kept = (m?.[2] ?? '').split(',').map((e) => e.split(':'));
    expect(kept.map(([id]) => Number(id))).toEqual([2, 3]);
    const flattened: BackupIncrementFixture[] = kept.map(([id, source], k) => ({
      id: Number(id),
      type: k === 0 ? 'FULL' : 'INCREMENT',
      source: source ?? '',
    }));
    await writeBackupImage(vm, imageId, flattened);
    const left = readdirSync(stack.localPath(BACKUP_HOST, `${BACKUP_BASE}/${vm.id}`)).sort();
    expect(left).toEqual(flattened.map((f) => f.source).sort());
    await restoreThroughImageDs(vm, imageId, flattened, 2);
    await restoreThroughTm(vm, imageId, 2);
    incs.splice(0, incs.length, ...flattened);
  }, 600_000);

  it('monitor reports the backup server; rm removes every increment', async () => {
    const monitorData = Buffer.from(
      `<DS_DRIVER_ACTION_DATA>${datastoreXml(backupDs)}</DS_DRIVER_ACTION_DATA>`,
    ).toString('base64');
    const mon = ok(await shim('datastore', 'grpc_backup', 'monitor', [String(BACKUP_DS)], monitorData));
    expect(mon).toMatch(/USED_MB=\d+/);
    expect(mon).toMatch(/TOTAL_MB=\d+/);
    expect(mon).toMatch(/FREE_MB=\d+/);
    ok(await shim('datastore', 'grpc_backup', 'rm', [String(imageId)], backupImageData(imageId)));
    for (const inc of incs) {
      expect(existsSync(stack.localPath(BACKUP_HOST, `${BACKUP_BASE}/${vm.id}/${inc.source}`))).toBe(false);
    }
    // a repeat (oned retrying) succeeds
    ok(await shim('datastore', 'grpc_backup', 'rm', [String(imageId)], backupImageData(imageId)));
    await rm(vm.expected, { recursive: true, force: true });
  }, 120_000);
});
