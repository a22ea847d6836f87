import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnedClient } from '../../../../coordinator/src/oned/oned-client.js';
import type { OnedError } from '../../../../coordinator/src/oned/oned-error.js';
import { LcmState } from '../../../../coordinator/src/oned/vm-state.js';
import { startFakeOned, type FakeOned } from './fake-oned.js';
import { writeDatastoreXml, writeHostXml, writeImageXml, writeVmXml, type VmFixture } from './fixtures.js';
import { writeUserXml } from './owned-objects.js';

const SESSION = 'oneadmin:opennebula';
const DEADLINE_MS = 5000;

const VM_42: VmFixture = {
  id: 42,
  lcmState: LcmState.Running,
  tmMadSystem: 'ssh',
  disks: [
    {
      diskId: 0,
      imageId: 7,
      datastoreId: 1,
      tmMad: 'qcow2',
      tmMadSystem: 'ssh',
      size: 10240,
      originalSize: 2048,
    },
    { diskId: 1, imageId: 8, datastoreId: 1, tmMad: 'qcow2', tmMadSystem: 'ssh', persistent: true },
    { diskId: 2, type: 'swap', size: 1024 },
  ],
  contextDiskId: 3,
  history: [
    { hostname: 'host01', dsId: 100, tmMad: 'ssh' },
    { hostname: 'host02', dsId: 101, tmMad: 'ssh' },
  ],
  snapshots: [{ diskId: 0, snapshots: [{ id: 0 }, { id: 1, parent: 0, active: true }] }],
  backupConfig: { MODE: 'INCREMENT', KEEP_LAST: 4 },
  backupIds: [55],
};

describe('fake oned over real gRPC', () => {
  let dir: string;
  let oned: FakeOned;
  let client: OnedClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fake-oned-'));
    await writeVmXml(dir, VM_42);
    await writeDatastoreXml(dir, { id: 1, dsMad: 'fs', tmMad: 'qcow2', template: { BRIDGE_LIST: 'host01' } });
    await writeDatastoreXml(dir, { id: 100, name: 'system', type: 1, tmMad: 'ssh' });
    await writeImageXml(dir, { id: 7, source: '/var/lib/one//datastores/1/abc', size: 2048, datastoreId: 1 });
    await writeHostXml(dir, { id: 1, name: 'host01', template: { REPLICA_STORAGE_IP: '10.0.0.9' } });
    oned = await startFakeOned({ fixturesDir: dir, session: SESSION });
    client = new OnedClient({ endpoint: oned.endpoint, session: SESSION, deadlineMs: DEADLINE_MS });
  });

  afterAll(async () => {
    client.close();
    await oned.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the VM document the fixture builder wrote, as the parser reads it', async () => {
    const vm = await client.vm(42);
    expect(vm).toMatchObject({
      id: 42,
      name: 'vm42',
      deployId: 'one-42',
      contextDiskId: 3,
      tmMadSystem: 'ssh',
    });
    expect(vm.lcmState).toBe(LcmState.Running);
    expect(vm.disks.map((d) => [d.diskId, d.clone, d.save, d.persistent, d.isVolatile])).toEqual([
      [0, true, false, undefined, false],
      [1, false, true, true, false],
      [2, undefined, undefined, undefined, true],
    ]);
    expect(vm.disk(0)).toMatchObject({
      size: 10240,
      originalSize: 2048,
      format: 'qcow2',
      tmMadSystem: 'ssh',
    });
    expect(vm.disk(0)?.source).toBe('/var/lib/one//datastores/1/image7');
    expect(vm.lastHistory).toMatchObject({
      seq: 1,
      hostname: 'host02',
      dsId: 101,
      tmMad: 'ssh',
      vmMad: 'kvm',
    });
    expect(vm.previousHistory?.dsId).toBe(100);
    expect(vm.diskSnapshots(0)?.snapshots.map((s) => [s.id, s.active, s.parent])).toEqual([
      [0, false, -1],
      [1, true, 0],
    ]);
    expect(vm.backupConfig).toEqual({ MODE: 'INCREMENT', KEEP_LAST: '4' });
    expect(vm.backupIds).toEqual([55]);
    expect(oned.calls).toContainEqual({ service: 'one.vm.VirtualMachineService', method: 'Info', id: 42 });
  });

  it('serves datastores, images and hosts', async () => {
    expect(await client.datastore(1)).toMatchObject({
      id: 1,
      dsMad: 'fs',
      tmMad: 'qcow2',
      basePath: '/var/lib/one//datastores/1',
      template: { BRIDGE_LIST: 'host01' },
    });
    expect((await client.datastore(100)).type).toBe(1);
    expect(await client.image(7)).toMatchObject({
      id: 7,
      source: '/var/lib/one//datastores/1/abc',
      size: 2048,
    });
    expect((await client.host(1)).template['REPLICA_STORAGE_IP']).toBe('10.0.0.9');
    await expect(client.version()).resolves.toBe('<VERSION>7.0.0</VERSION>');
  });

  it.each([
    ['vmXml', 'VM', 'one.vm.info', 'virtual machine'],
    ['datastoreXml', 'datastore', 'one.datastore.info', 'datastore'],
    ['imageXml', 'image', 'one.image.info', 'image'],
    ['hostXml', 'host', 'one.host.info', 'host'],
  ] as const)('%s of a missing id is NOT_FOUND with oned-like text', async (method, noun, call, onedNoun) => {
    const err = (await client[method](999).catch((e: unknown) => e)) as OnedError;
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.message).toBe(
      `oned: ${noun} 999 info failed: NOT_FOUND: [${call}] Error getting ${onedNoun} [999].`,
    );
  });

  it('refuses a bad session with UNAUTHENTICATED', async () => {
    const intruder = new OnedClient({
      endpoint: oned.endpoint,
      session: 'oneadmin:wrong',
      deadlineMs: DEADLINE_MS,
    });
    try {
      await expect(intruder.vmXml(42)).rejects.toThrow(
        "oned: VM 42 info failed: UNAUTHENTICATED: [one.vm.info] User couldn't be authenticated, aborting call.",
      );
      await expect(intruder.allocateTemplate('NAME = x')).rejects.toThrow('UNAUTHENTICATED');
    } finally {
      intruder.close();
    }
  });

  it('reads fixtures at each request, so a change between two requests is seen', async () => {
    expect((await client.vm(42)).lcmState).toBe(LcmState.Running);
    await writeVmXml(dir, { ...VM_42, lcmState: LcmState.HotplugSaveas });
    expect((await client.vm(42)).lcmState).toBe(LcmState.HotplugSaveas);
    await writeVmXml(dir, VM_42);
  });

  it('allocates images and templates with increasing ids, writing each template', async () => {
    const first = await client.allocateImage('NAME = "restored"\nPATH = "/tmp/x"\n', 1);
    const second = await client.allocateImage('NAME = "restored-2"\n', 1);
    // ids continue after the image fixtures, as oned's pool would
    expect(first).toBe(8);
    expect(second).toBe(9);
    expect(await readFile(join(dir, 'allocated', `image-${first}.tpl`), 'utf8')).toContain('restored');
    await expect(client.allocateImage('NAME = "x"', 555)).rejects.toThrow(
      'oned: image allocate in datastore 555 failed: NOT_FOUND: [one.image.allocate] Error getting datastore [555].',
    );
    const t0 = await client.allocateTemplate('NAME = "vm-restore"\nCPU = 1\n');
    const t1 = await client.allocateTemplate('NAME = "vm-restore-2"\n');
    expect(t1).toBe(t0 + 1);
    expect(await readFile(join(dir, 'allocated', `template-${t1}.tpl`), 'utf8')).toBe(
      'NAME = "vm-restore-2"\n',
    );
    expect(oned.calls).toContainEqual({ service: 'one.image.ImageService', method: 'Allocate', id: 1 });
  });

  it('finds users by name, chowns and deletes allocated objects, never reusing an id', async () => {
    await writeUserXml(dir, { id: 0, name: 'oneadmin', gid: 0 });
    await writeUserXml(dir, { id: 5, name: 'alice', gid: 100 });
    expect(await client.userByName('alice')).toEqual({ id: 5, gid: 100, name: 'alice' });
    expect(await client.userByName('Alice')).toBeUndefined();
    const image = await client.allocateImage('NAME = "mine"\n', 1);
    const template = await client.allocateTemplate('NAME = "mine"\n');
    await client.chownImage(image, 5, 100);
    await client.chownTemplate(template, 5, -1);
    const owner = (kind: string, id: number): Promise<string> =>
      readFile(join(dir, 'allocated', `${kind}-${id}.owner`), 'utf8');
    expect(await owner('image', image)).toBe('UID=5 GID=100\n');
    expect(await owner('template', template)).toBe('UID=5 GID=0\n');
    await expect(client.chownImage(image, 77, 1)).rejects.toThrow(
      'oned: image ' + image + ' chown to 77:1 failed: NOT_FOUND: [one.image.chown] Error getting user [77].',
    );
    await client.deleteTemplate(template);
    await client.deleteImage(image, true);
    expect(existsSync(join(dir, 'allocated', `image-${image}.tpl`))).toBe(false);
    expect(existsSync(join(dir, 'allocated', `image-${image}.deleted`))).toBe(true);
    await expect(client.deleteImage(image, true)).rejects.toThrow(
      `NOT_FOUND: [one.image.delete] Error getting image [${image}].`,
    );
    expect(await client.allocateImage('NAME = "next"\n', 1)).toBe(image + 1);
    expect(await client.allocateTemplate('NAME = "next"\n')).toBe(template + 1);
  });

  it('refuses an allocation while refuse/<method> says so', async () => {
    await mkdir(join(dir, 'refuse'), { recursive: true });
    await writeFile(join(dir, 'refuse', 'one.template.allocate'), '[one.template.allocate] Parse error\n');
    try {
      await expect(client.allocateTemplate('NAME = "x"\n')).rejects.toThrow(
        'oned: template allocate failed: FAILED_PRECONDITION: [one.template.allocate] Parse error',
      );
    } finally {
      await rm(join(dir, 'refuse'), { recursive: true });
    }
  });
});

describe('fake oned without a session check', () => {
  it('accepts any session and listens where it is told', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fake-oned-'));
    const oned = await startFakeOned({ fixturesDir: dir, listen: '127.0.0.1:0' });
    const client = new OnedClient({
      endpoint: oned.endpoint,
      session: 'anyone:anything',
      deadlineMs: DEADLINE_MS,
    });
    try {
      expect(oned.endpoint).toBe(`127.0.0.1:${oned.port}`);
      await expect(client.version()).resolves.toContain('7.0.0');
      await expect(client.vmXml(1)).rejects.toThrow('NOT_FOUND');
    } finally {
      client.close();
      await oned.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
