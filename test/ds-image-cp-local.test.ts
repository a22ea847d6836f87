import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../cli/src/demo/stack.js';
import { MIB, makeImage } from '../cli/src/demo/demo-images.js';
import { actionData, statImage, type DatastoreXmlOptions } from './support/ds-action-data.js';
import {
  dsAction,
  expectFailure,
  expectSourceName,
  expectSuccess,
  infoLines,
  storedFormat,
} from './support/ds-image-stack.js';
import { imagesIdentical, layout } from './support/files.js';

// cp and stat of files on the front-end (an operator's uploads), through the shims, against real
// agents: the front-end's agent reads uploads from its imports.dirs; a bridged datastore receives
// the file over the data path. SAFE_DIRS / RESTRICTED_DIRS are checked by the coordinator on the
// path as written and by the agent on the resolved path.
const FE_DS = 1;
const BRIDGED_DS = 2; // BRIDGE_LIST host01
let uploads: string;
let stack: Stack;
let qcow2: string;
let raw: string;

beforeAll(async () => {
  uploads = mkdtempSync(join(tmpdir(), 'ds-uploads-'));
  mkdirSync(join(uploads, 'private'));
  qcow2 = join(uploads, 'disk.qcow2');
  await makeImage(qcow2, 'qcow2', 10, 0x33);
  raw = join(uploads, 'disk.raw');
  writeFileSync(raw, Buffer.alloc(MIB + 1, 0x44));
  writeFileSync(join(uploads, 'private', 'secret.raw'), Buffer.alloc(MIB, 0x55));
  symlinkSync(join(uploads, 'private', 'secret.raw'), join(uploads, 'innocent.raw'));
  writeFileSync(join(uploads, 'empty.raw'), '');
  stack = await Stack.start({
    hosts: ['frontend', 'host01'],
    agentSettings: (name) => (name === 'frontend' ? { imports: { dirs: [uploads] } } : {}),
  });
});

afterAll(async () => {
  await stack?.stop();
  if (uploads) rmSync(uploads, { recursive: true, force: true });
});

const base = (ds: number): string => `/var/lib/one/datastores/${ds}`;
/** oned's defaults for a new datastore, with our uploads as the safe directory. */
const defaults = (): Record<string, string> => ({ SAFE_DIRS: uploads, RESTRICTED_DIRS: '/' });

function datastore(ds: number, template: Record<string, string> = defaults()): DatastoreXmlOptions {
  return { id: ds, template: { ...template, ...(ds === BRIDGED_DS ? { BRIDGE_LIST: 'host01' } : {}) } };
}

/** The host a datastore's images land on in this stack. */
const hostOf = (ds: number): string => (ds === BRIDGED_DS ? 'host01' : 'frontend');

async function cp(
  id: number,
  path: string,
  ds: number,
  template?: Record<string, string>,
): Promise<[string, string]> {
  const before = Date.now();
  const r = await dsAction(
    stack,
    'cp',
    id,
    actionData({ image: { id, path }, datastore: datastore(ds, template) }),
  );
  const out = expectSuccess(r);
  expect(infoLines(r)).toContain(`Copying local image ${path} to the image repository`);
  const m = /^(\S+) (raw|qcow2)\n$/.exec(out);
  expect(m, out).not.toBeNull();
  expectSourceName(m?.[1] as string, base(ds), id, before, Date.now());
  return [m?.[1] as string, m?.[2] as string];
}

describe('cp of a front-end file', () => {
  it.each([FE_DS, BRIDGED_DS])('into datastore %i: the same image, its format detected', async (ds) => {
    const [source, format] = await cp(60 + ds, qcow2, ds);
    expect(format).toBe('qcow2');
    expect(storedFormat(stack.localPath(hostOf(ds), source))).toBe('qcow2');
    expect(await imagesIdentical(qcow2, 'qcow2', stack.localPath(hostOf(ds), source), 'qcow2')).toBe(true);
  });

  it.each([FE_DS, BRIDGED_DS])('into datastore %i with DRIVER=qcow2: converted', async (ds) => {
    const [source, format] = await cp(62 + ds, raw, ds, { ...defaults(), DRIVER: 'qcow2' });
    expect(format).toBe('qcow2');
    const landed = stack.localPath(hostOf(ds), source);
    expect(storedFormat(landed)).toBe('qcow2');
    expect(await imagesIdentical(raw, 'raw', landed, 'qcow2')).toBe(true);
  });

  const privateDirs = (): Record<string, string> => ({ RESTRICTED_DIRS: `${uploads}/private` });
  it.each([
    [
      'under a restricted directory, by the coordinator',
      () => join(uploads, 'private', 'secret.raw'),
      privateDirs,
    ],
    ['outside SAFE_DIRS with RESTRICTED_DIRS=/, by the coordinator', () => '/etc/hostname', defaults],
    [
      "in oned's implicit restricted directories, by the coordinator",
      () => '/var/lib/one/datastores/0/1/disk.0',
      () => ({ SAFE_DIRS: '/tmp' }),
    ],
    ['linked into a restricted directory, by the agent', () => join(uploads, 'innocent.raw'), privateDirs],
  ])('refuses a file %s, creating nothing', async (_what, path, template) => {
    for (const ds of [FE_DS, BRIDGED_DS]) {
      const before = layout(stack.localPath(hostOf(ds), base(ds)));
      const r = await dsAction(
        stack,
        'cp',
        64,
        actionData({ image: { id: 64, path: path() }, datastore: datastore(ds, template()) }),
      );
      expectFailure(r, /^cp failed: .*\bimage 64\b.*(not allowed|restricted)/i);
      expect(r.stderr).toMatch(/^ERROR: cp: PATH_RESTRICTED /m);
      expect(layout(stack.localPath(hostOf(ds), base(ds)))).toEqual(before);
    }
  });

  it('fails on an MD5 mismatch, leaving nothing', async () => {
    const ds = FE_DS;
    const before = layout(stack.localPath('frontend', base(ds)));
    const r = await dsAction(
      stack,
      'cp',
      65,
      actionData({
        image: { id: 65, path: raw, template: { MD5: '0'.repeat(32) } },
        datastore: datastore(ds),
      }),
    );
    expectFailure(
      r,
      /^cp failed: cp image 65 from frontend:.*disk\.raw into .*: MD5 mismatch: expected 0{32}, got [0-9a-f]{32}$/,
    );
    expect(r.stderr).toMatch(/^ERROR: cp: CHECKSUM_MISMATCH /m);
    expect(layout(stack.localPath('frontend', base(ds)))).toEqual(before);
  });

  it('refuses schemes it does not download and a relative path, in one line', async () => {
    for (const [path, message] of [
      ['ssh://host01:/var/tmp/a.qcow2', /PATH scheme ssh:\/\/ is not supported by the grpc image datastore/],
      ['grpc_backup://100/7/0', /PATH "grpc_backup:\/\/100\/7\/0" is not grpc_backup:\/\/<ds>/],
      ['disk.qcow2', /is neither an absolute path nor an http\(s\) URL$/],
    ] as const) {
      const r = await dsAction(
        stack,
        'cp',
        66,
        actionData({ image: { id: 66, path }, datastore: datastore(FE_DS) }),
      );
      expectFailure(r, message);
    }
  });
});

describe('stat of a front-end file', () => {
  const stat = (path: string, template = defaults()) =>
    dsAction(
      stack,
      'stat',
      12,
      actionData({ image: statImage(path), datastore: datastore(FE_DS, template) }),
    );

  it('prints the virtual size of a qcow2 and the size of a raw file, in MiB rounded up', async () => {
    expect(expectSuccess(await stat(qcow2))).toBe('10\n');
    expect(expectSuccess(await stat(raw))).toBe('2\n');
  });

  it('fails in one line for a missing file, a directory, an empty file and a restricted one', async () => {
    expectFailure(
      await stat(join(uploads, 'missing.qcow2')),
      /^stat failed: stat image at frontend:.*missing\.qcow2: .*does not exist$/,
    );
    expectFailure(
      await stat(join(uploads, 'private')),
      /^stat failed: stat image at frontend:.*private: .*not a regular file$/,
    );
    expectFailure(await stat(join(uploads, 'empty.raw')), /^stat failed: .*empty\.raw.*empty/);
    const restricted = await stat(join(uploads, 'private', 'secret.raw'), {
      RESTRICTED_DIRS: `${uploads}/private`,
    });
    expectFailure(restricted, /^stat failed: stat request 12: not allowed to register .*secret\.raw/);
    expect(readdirSync(uploads).sort()).toEqual([
      'disk.qcow2',
      'disk.raw',
      'empty.raw',
      'innocent.raw',
      'private',
    ]);
  });
});
