// A whole image life through the shims, against real agents, as oned drives it: DS cp of an http
// URL, DS stat of it, DS clone; the clone made persistent and used by a VM through the TM driver
// (ln, two snap_create with writes between, mvds, delete); DS snap_revert and snap_flatten of the
// image it left; DS export, and a DS cp of the exported URL into a datastore on another agent; DS rm
// of everything. Every later call gets the SOURCE and FORMAT the earlier ones printed, as oned stores
// them. Once with TM `grpc` (local: the VM's disk is a copy on its host) and once with `grpc_qcow2`
// (shared: the VM writes into the image, its snapshots in <SOURCE>.snap): docs/image-datastore.md.
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, md5File, writePattern } from '../cli/src/demo/demo-images.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { LcmState } from '../coordinator/src/oned/vm-state.js';
import { expectOk, holdsPattern } from './support/assertions.js';
import {
  actionData,
  statImage,
  type DatastoreXmlOptions,
  type ImageXmlOptions,
} from './support/ds-action-data.js';
import {
  dsAction,
  expectSourceName,
  expectSuccess,
  infoLines,
  storedFormat,
} from './support/ds-image-stack.js';
import {
  currentStateFile,
  importInfo,
  printedImage,
  type ImportInfo,
  type Printed,
} from './support/ds-image-life.js';
import { imageInfo, imagesIdentical, layout } from './support/files.js';
import { startImageServer, type ImageServer } from './support/image-server.js';

const SIZE_MB = 16;
/** The fixture's bytes: 0x11 in its first MiB, 0x12 at 8 MiB; nothing at 2 MiB. */
const AT_2M = 2 * MIB;
const AT_8M = 8 * MIB;
/** What the VM wrote: before snapshot 0, before snapshot 1 (at 0 and 2 MiB), after snapshot 1. */
const SNAP0 = 0xa0;
const SNAP1 = 0xa1;
const SNAP1_AT_2M = 0xa2;
const AFTER = 0xa3;

interface Flow {
  tm: 'grpc' | 'grpc_qcow2';
  /** The image datastore (on the front-end: no BRIDGE_LIST) and the system datastore. */
  imageDs: number;
  systemDs: number;
  /** The datastore the exported image is registered into again: BRIDGE_LIST host02. */
  otherDs: number;
  vmHost: string;
  vm: number;
  /** Image ids: the cp, the clone (made persistent), the cp of the export. */
  ids: [number, number, number];
}

// The front-end's and host01's datastore directories are one (shared mode's NFS); host02 has its
// own. The local flow runs its VM on host02, the shared flow on host01.
const FLOWS: Flow[] = [
  { tm: 'grpc', imageDs: 1, systemDs: 0, otherDs: 2, vmHost: 'host02', vm: 40, ids: [10, 11, 12] },
  {
    tm: 'grpc_qcow2',
    imageDs: 101,
    systemDs: 100,
    otherDs: 102,
    vmHost: 'host01',
    vm: 41,
    ids: [20, 21, 22],
  },
];

let work: string;
let stack: Stack;
let images: ImageServer;
let fixture: Buffer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ds-life-'));
  const file = join(work, 'life.qcow2');
  await makeImage(file, 'qcow2', SIZE_MB, 0x11);
  await writePattern(file, 'qcow2', 0x12, AT_8M, MIB);
  fixture = readFileSync(file);
  images = await startImageServer();
  const shared = join(work, 'nfs');
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02'],
    hostDirs: { frontend: shared, host01: shared },
    agentSettings: (name) => (name === 'frontend' ? { export: { listen: '127.0.0.1:0' } } : {}),
  });
});

afterAll(async () => {
  await stack?.stop();
  await images?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const base = (ds: number): string => `${ONED_DATASTORE_LOCATION}/${ds}`;
const onFrontend = (path: string): string => stack.localPath('frontend', path);
const holds = (file: string, pattern: number, offset: number): Promise<boolean> =>
  holdsPattern(file, pattern, offset, 'qcow2');

describe.each(FLOWS)('the life of an image with TM $tm', (flow) => {
  const url = (): string => images.url(`/life-${flow.tm}.qcow2`);
  const [cpId, cloneId, importId] = flow.ids;
  const vmDir = `${base(flow.systemDs)}/${flow.vm}`;
  const disk = `${vmDir}/disk.0`;
  const imageDs: DatastoreXmlOptions = {
    id: flow.imageDs,
    tmMad: flow.tm,
    template: { TM_MAD: flow.tm },
  };
  const otherDs: DatastoreXmlOptions = { id: flow.otherDs, template: { BRIDGE_LIST: 'host02' } };
  let registered: Printed;
  let persistent: Printed;
  let exported: ImportInfo;
  let imported: Printed;

  const tm = (action: string, args: string[]): Promise<ActionRun> =>
    runAction(stack.remotesDir, 'tm', flow.tm, action, args);
  const writeVm = (lcmState: number): Promise<string> =>
    writeVmXml(stack.fixturesDir, {
      id: flow.vm,
      lcmState,
      disks: [
        {
          diskId: 0,
          imageId: cloneId,
          datastoreId: flow.imageDs,
          source: persistent.source,
          format: persistent.format,
          tmMad: flow.tm,
          persistent: true,
          size: SIZE_MB,
          originalSize: SIZE_MB,
        },
      ],
      history: [{ hostname: flow.vmHost, dsId: flow.systemDs, tmMad: flow.tm }],
    });
  /** A DS action on the image `image` as oned sends it (a READY image, with what it stored). */
  const ds = (action: string, arg: number, image: ImageXmlOptions, datastore = imageDs): Promise<ActionRun> =>
    dsAction(stack, action, arg, actionData({ image: { size: SIZE_MB, ...image }, datastore }));
  const onPersistent = (action: string, targetSnapshot: number): Promise<ActionRun> =>
    ds(action, cloneId, { id: cloneId, ...persistent, persistent: 1, targetSnapshot });

  it('cp registers the URL, downloaded by the front-end agent, as a qcow2 named as fs names it', async () => {
    images.serve(`/life-${flow.tm}.qcow2`, fixture);
    const before = Date.now();
    const r = await ds('cp', cpId, { id: cpId, path: url(), format: null });
    registered = printedImage(expectSuccess(r));
    expectSourceName(registered.source, base(flow.imageDs), cpId, before, Date.now());
    expect(registered.format).toBe('qcow2');
    expect(infoLines(r)).toContain(`Downloading image ${url()} to the image repository`);
    expect(await md5File(onFrontend(registered.source))).toBe(
      createHash('md5').update(fixture).digest('hex'),
    );
  });

  it('stat of the same URL prints its virtual size in MiB', async () => {
    const r = await dsAction(stack, 'stat', 0, actionData({ image: statImage(url()), datastore: imageDs }));
    expect(expectSuccess(r)).toBe(`${SIZE_MB}\n`);
  });

  it('clone copies it into a new standalone image', async () => {
    const before = Date.now();
    const r = await ds('clone', cloneId, { id: cloneId, path: registered.source, format: registered.format });
    persistent = printedImage(expectSuccess(r));
    expectSourceName(persistent.source, base(flow.imageDs), cloneId, before, Date.now());
    expect(persistent.source).not.toBe(registered.source);
    const copy = onFrontend(persistent.source);
    expect(storedFormat(copy)).toBe(persistent.format);
    expect((await imageInfo(copy, persistent.format))['backing-filename']).toBeUndefined();
    expect(await imagesIdentical(onFrontend(registered.source), 'qcow2', copy, persistent.format)).toBe(true);
  });

  it('a VM uses the clone, persistent: ln, snap_create 0 and 1 with writes between, mvds, delete', async () => {
    await writeVm(LcmState.Prolog);
    expectOk(
      await tm('ln', [
        `frontend:${persistent.source}`,
        `${flow.vmHost}:${disk}`,
        `${flow.vm}`,
        `${flow.imageDs}`,
      ]),
    );
    const vmDisk = stack.localPath(flow.vmHost, disk);
    expect(await holds(vmDisk, 0x11, 0)).toBe(true);
    await writeVm(LcmState.DiskSnapshotPoweroff);
    await writePattern(vmDisk, 'qcow2', SNAP0, 0, MIB);
    expectOk(await tm('snap_create', [`${flow.vmHost}:${disk}`, '0', `${flow.vm}`, `${flow.imageDs}`]));
    await writePattern(vmDisk, 'qcow2', SNAP1, 0, MIB);
    await writePattern(vmDisk, 'qcow2', SNAP1_AT_2M, AT_2M, MIB);
    expectOk(await tm('snap_create', [`${flow.vmHost}:${disk}`, '1', `${flow.vm}`, `${flow.imageDs}`]));
    await writePattern(vmDisk, 'qcow2', AFTER, 0, MIB);
    await writeVm(LcmState.Epilog);
    expectOk(
      await tm('mvds', [`${flow.vmHost}:${disk}`, persistent.source, `${flow.vm}`, `${flow.imageDs}`]),
    );
    expectOk(await tm('delete', [`${flow.vmHost}:${vmDir}`, `${flow.vm}`, `${flow.systemDs}`]));
    expect(layout(stack.localPath(flow.vmHost, vmDir))).toEqual([]);
    // The image's current state is what the VM left; its snapshots are beside it: in place with
    // `.snap/0 -> SOURCE` (shared), or copied back with SOURCE linked to its active file (local).
    const local = onFrontend(persistent.source);
    expect(lstatSync(`${local}.snap/0`).isSymbolicLink()).toBe(flow.tm === 'grpc_qcow2');
    expect(lstatSync(local).isSymbolicLink()).toBe(flow.tm === 'grpc');
    expect(await holds(currentStateFile(local), AFTER, 0)).toBe(true);
    expect(await holds(currentStateFile(local), SNAP1_AT_2M, AT_2M)).toBe(true);
    expect(await holds(`${local}.snap/0`, SNAP0, 0)).toBe(true);
    expect(await holds(`${local}.snap/1`, SNAP1, 0)).toBe(true);
  });

  it("snap_revert to 0 gives snapshot 0's content; the snapshots stay", async () => {
    expect(expectSuccess(await onPersistent('snap_revert', 0))).toBe('');
    const local = onFrontend(persistent.source);
    const current = currentStateFile(local);
    expect(await holds(current, SNAP0, 0)).toBe(true);
    expect(await holds(current, 0x00, AT_2M)).toBe(true);
    expect(await holds(current, 0x12, AT_8M)).toBe(true);
    expect(await holds(`${local}.snap/1`, SNAP1, 0)).toBe(true);
    expect(await holds(`${local}.snap/1`, SNAP1_AT_2M, AT_2M)).toBe(true);
  });

  it("snap_flatten to 1 leaves a standalone SOURCE with snapshot 1's content and no snap dir", async () => {
    expect(expectSuccess(await onPersistent('snap_flatten', 1))).toBe('');
    const local = onFrontend(persistent.source);
    expect(layout(onFrontend(base(flow.imageDs))).filter((l) => l.includes('.snap'))).toEqual([]);
    expect(storedFormat(local)).toBe(persistent.format);
    expect((await imageInfo(local, persistent.format))['backing-filename']).toBeUndefined();
    expect(await holds(local, SNAP1, 0)).toBe(true);
    expect(await holds(local, SNAP1_AT_2M, AT_2M)).toBe(true);
    expect(await holds(local, 0x12, AT_8M)).toBe(true);
  });

  it('export answers an https IMPORT_SOURCE, the MD5 of the image and its format', async () => {
    const out = expectSuccess(await ds('export', 5, { id: cloneId, ...persistent }));
    exported = importInfo(out);
    expect(exported.IMPORT_SOURCE).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/export\//);
    expect(exported.FORMAT).toBe(persistent.format);
    expect(exported.SIZE).toBe(String(SIZE_MB));
    expect(exported.MD5).toBe(await md5File(onFrontend(persistent.source)));
  });

  it('cp of IMPORT_SOURCE into a datastore on another agent gives the same bytes', async () => {
    const before = Date.now();
    const r = await ds(
      'cp',
      importId,
      { id: importId, path: exported.IMPORT_SOURCE, format: null, template: { FROM_APP_MD5: exported.MD5 } },
      otherDs,
    );
    imported = printedImage(expectSuccess(r));
    expectSourceName(imported.source, base(flow.otherDs), importId, before, Date.now());
    expect(imported.format).toBe(exported.FORMAT);
    // The export URL's token is a credential: what oned logs names the URL without it.
    const token = /\/export\/([^/]+)/.exec(exported.IMPORT_SOURCE)?.[1] as string;
    expect(r.stderr).not.toContain(token);
    const copy = stack.localPath('host02', imported.source);
    expect(await md5File(copy)).toBe(exported.MD5);
    const original = onFrontend(persistent.source);
    expect(await imagesIdentical(original, persistent.format, copy, imported.format)).toBe(true);
  });

  it('rm of every image leaves the datastores empty: no temporary, no .snap, no .md5sum', async () => {
    for (const [id, image, datastore] of [
      [cpId, registered, imageDs],
      [cloneId, persistent, imageDs],
      [importId, imported, otherDs],
    ] as const) {
      expect(expectSuccess(await ds('rm', id, { id, ...image }, datastore))).toBe('');
    }
    expect(layout(onFrontend(base(flow.imageDs)))).toEqual([]);
    expect(layout(stack.localPath('host02', base(flow.otherDs)))).toEqual([]);
  });
});
