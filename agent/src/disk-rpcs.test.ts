import { existsSync, mkdirSync, readdirSync, readlinkSync, statfsSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import {
  type AgentServiceClient,
  BackingStyle,
  ImageFormat,
  type SnapshotCreateRequest,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { parseAgentConfig } from './config.js';
import { type RunningAgent, startAgent } from './server.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  call,
  failure,
  makeDatastores,
  makePki,
  makeTempDir,
  ds,
} from '../../test/support/agent/agent-fixture.js';
import {
  KIB,
  MIB,
  checkClean,
  patternMismatches,
  qemuImg,
  writePattern,
} from '../../test/support/agent/disk-testing.js';

/**
 * The disk RPCs through a real agent over mutual TLS: codes and reasons on the wire, repeats, and a
 * full filesystem (a small tmpfs mounted as a VM directory) during snapshots and conversions.
 */
const REPEATS = 3;
const TMPFS_SIZE = '8m';
let base: string;
let root: string;
let pki: Pki;
let agent: RunningAgent;
let client: AgentServiceClient;
let tmpfs: string | undefined;
const local = (rel: string): string => join(root, rel);

beforeAll(async () => {
  base = await makeTempDir('agent-disk-rpcs-');
  pki = await makePki(base);
  root = await makeDatastores(base);
  const config = parseAgentConfig(
    {
      name: AGENT_NAME,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pki.dir, AGENT_NAME),
    },
    'test config',
  );
  agent = await startAgent(config, pino({ level: 'silent' }));
  client = agentClient(agent.port, pki.dir);
  const dir = local('0/77');
  mkdirSync(dir, { recursive: true });
  // Needs root (as on the project's machines); the NO_SPACE tests are skipped without it.
  tmpfs = await runTool('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dir]).then(
    () => dir,
    () => undefined,
  );
});

afterAll(async () => {
  client?.close();
  await agent?.close();
  if (tmpfs) await runTool('umount', [tmpfs]);
  if (base) await rm(base, { recursive: true, force: true });
});

const snapshotCreate = (r: SnapshotCreateRequest) => call(client.snapshotCreate.bind(client), r);
const snapshotRevert = (r: SnapshotCreateRequest) => call(client.snapshotRevert.bind(client), r);
const snapshotDelete = (r: SnapshotCreateRequest & { active: boolean }) =>
  call(client.snapshotDelete.bind(client), r);
const snap = (vm: string, id: number, extra: Partial<SnapshotCreateRequest> = {}): SnapshotCreateRequest => ({
  diskPath: ds(`${vm}/disk.0`),
  snapId: id,
  format: ImageFormat.IMAGE_FORMAT_QCOW2,
  snapDir: '',
  backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
  live: undefined,
  ...extra,
});

async function repeat<T>(fn: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < REPEATS; i++) results.push(await fn());
  return results;
}

/** A qcow2/shared VM disk: disk.0 -> disk.0.snap/0 (standalone), slot 0 written with `byte`. */
async function qcow2Disk(vm: string, sizeMb: number, dataBytes: number, byte: number): Promise<string> {
  const dir = local(vm);
  mkdirSync(join(dir, 'disk.0.snap'), { recursive: true });
  symlinkSync('.', join(dir, 'disk.0.snap/disk.0.snap'));
  await qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'disk.0.snap/0'), `${sizeMb}M`);
  symlinkSync('disk.0.snap/0', join(dir, 'disk.0'));
  if (dataBytes > 0) await writePattern(join(dir, 'disk.0'), 'qcow2', byte, 0, dataBytes);
  return join(dir, 'disk.0');
}

/** Fills the tmpfs until only `leaveBytes` remain free. */
async function fill(dir: string, leaveBytes: number): Promise<void> {
  const { bavail, bsize } = statfsSync(dir);
  const fillBytes = bavail * bsize - leaveBytes;
  if (fillBytes > 0) await runTool('fallocate', ['-l', String(fillBytes), join(dir, 'filler')]);
}

function hidden(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.'));
}

describe('disk RPCs over mutual TLS', () => {
  it('CreateImage, ImageInfo and Convert answer typed results; repeats give the same', async () => {
    const created = await repeat(() =>
      call(client.createImage.bind(client), {
        path: ds('0/10/disk.1'),
        sizeMb: 16,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        filesystem: 'ext4',
        filesystemOptions: '',
        sparse: true,
        swap: false,
      }),
    );
    expect(new Set(created.map((c) => c.virtualSize))).toEqual(new Set([16 * MIB]));
    await qcow2Disk('0/10', 8, 128 * KIB, 0x61);
    await call(client.snapshotCreate.bind(client), snap('0/10', 0));
    const info = await call(client.imageInfo.bind(client), {
      path: ds('0/10/disk.0'),
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
    });
    expect(info.layers.map((l) => [l.format, l.virtualSize, l.backingFilename, l.backingFormat])).toEqual([
      [ImageFormat.IMAGE_FORMAT_QCOW2, 8 * MIB, 'disk.0.snap/0', ImageFormat.IMAGE_FORMAT_QCOW2],
      [ImageFormat.IMAGE_FORMAT_QCOW2, 8 * MIB, '', ImageFormat.IMAGE_FORMAT_UNSPECIFIED],
    ]);
    expect(info.layers[0]?.filename).toBe(local('0/10/disk.0.snap/1'));
    const converted = await repeat(() =>
      call(client.convert.bind(client), {
        source: ds('0/10/disk.0'),
        destination: ds('1/saved'),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: true,
        snapshot: undefined,
        imageCurrentState: false,
      }),
    );
    expect(new Set(converted.map((c) => c.virtualSize))).toEqual(new Set([8 * MIB]));
    expect(
      await patternMismatches(local('1/saved'), 'qcow2', [{ offset: 0, length: 128 * KIB, byte: 0x61 }]),
    ).toEqual([]);
  });

  it('BuildIso over the wire', async () => {
    await call(client.buildIso.bind(client), {
      path: ds('0/10/disk.3'),
      label: 'CONTEXT',
      files: [{ name: 'context.sh', content: Buffer.from("VMID='10'\n") }],
    });
    expect((await runTool('isoinfo', ['-R', '-x', '/context.sh', '-i', local('0/10/disk.3')])).stdout).toBe(
      "VMID='10'\n",
    );
  });

  it('snapshot create/revert/delete: repeats succeed with the same result', async () => {
    const disk = await qcow2Disk('0/11', 8, 64 * KIB, 0x01);
    expect(await repeat(() => snapshotCreate(snap('0/11', 0)))).toEqual([
      { created: true },
      { created: false },
      { created: false },
    ]);
    await writePattern(disk, 'qcow2', 0x02, 0, 64 * KIB);
    await repeat(() => snapshotRevert(snap('0/11', 0)));
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: 64 * KIB, byte: 0x01 }])).toEqual([]);
    expect(await repeat(() => snapshotDelete({ ...snap('0/11', 0), active: true }))).toEqual([
      { existed: true },
      { existed: false },
      { existed: false },
    ]);
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: 64 * KIB, byte: 0x01 }])).toEqual([]);
  });

  it('raw snapshots of a disk that links to a persistent image keep the link', async () => {
    mkdirSync(local('0/12'));
    await qemuImg('create', '-q', '-f', 'raw', local('1/raw-image'), '4M');
    symlinkSync(local('1/raw-image'), local('0/12/disk.0'));
    await writePattern(local('1/raw-image'), 'raw', 0x0a, 0, MIB);
    const raw = (id: number) =>
      snap('0/12', id, {
        format: ImageFormat.IMAGE_FORMAT_RAW,
        backingStyle: BackingStyle.BACKING_STYLE_UNSPECIFIED,
      });
    expect(await repeat(() => snapshotCreate(raw(0)))).toEqual([
      { created: true },
      { created: false },
      { created: false },
    ]);
    await writePattern(local('1/raw-image'), 'raw', 0x0b, 0, MIB);
    await repeat(() => snapshotRevert(raw(0)));
    expect(readlinkSync(local('0/12/disk.0'))).toBe(local('1/raw-image'));
    expect(
      await patternMismatches(local('1/raw-image'), 'raw', [{ offset: 0, length: MIB, byte: 0x0a }]),
    ).toEqual([]);
    expect(await snapshotDelete({ ...raw(0), active: false })).toEqual({ existed: true });
  });

  it('bad input: codes and reasons on the wire', async () => {
    await qcow2Disk('0/13', 8, 0, 0);
    const missing = await failure(snapshotRevert(snap('0/13', 12345678)));
    expect([missing.code, missing.reason]).toEqual([grpc.status.NOT_FOUND, 'NOT_FOUND']);
    expect(missing.message).toBe(
      'snapshot revert host01:/var/lib/one/datastores/0/13/disk.0 (snapshot 12345678): snapshot 12345678 does not exist (no disk.0.snap/12345678)',
    );
    const outside = await failure(snapshotCreate(snap('0/13', 0, { diskPath: '/etc/passwd' })));
    expect([outside.code, outside.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS']);
    const format = await failure(snapshotCreate(snap('0/13', 0, { format: ImageFormat.UNRECOGNIZED })));
    expect([format.code, format.reason]).toEqual([grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT']);
    const active = await failure(snapshotDelete({ ...snap('0/13', 0), active: true }));
    expect([active.code, active.reason]).toEqual([grpc.status.FAILED_PRECONDITION, 'BAD_LAYOUT']);
    const convert = await failure(
      call(client.convert.bind(client), {
        source: ds('0/13/disk.0'),
        destination: ds('1/c'),
        format: ImageFormat.UNRECOGNIZED,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: true,
        snapshot: undefined,
        imageCurrentState: false,
      }),
    );
    expect(convert.message).toBe('convert on host01: format must be one of raw, qcow2 (got -1)');
  });
});

describe.skipIf(process.getuid?.() !== 0)('a full filesystem (tmpfs)', () => {
  it('snapshot create: NO_SPACE, nothing half-made, the disk intact', async () => {
    expect(tmpfs).toBeDefined();
    const dir = local('0/77');
    const disk = await qcow2Disk('0/77', 16, MIB, 0x5a);
    await fill(dir, 16 * KIB);
    const err = await failure(snapshotCreate(snap('0/77', 0)));
    expect([err.code, err.reason]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'NO_SPACE']);
    expect(err.message).toMatch(
      /^snapshot create host01:\/var\/lib\/one\/datastores\/0\/77\/disk.0 \(snapshot 0\): /,
    );
    expect(readlinkSync(disk)).toBe('disk.0.snap/0');
    expect(readdirSync(join(dir, 'disk.0.snap')).sort()).toEqual(['0', 'disk.0.snap']);
    expect(hidden(dir)).toEqual([]);
    expect(hidden(join(dir, 'disk.0.snap'))).toEqual([]);
    expect(await patternMismatches(disk, 'qcow2', [{ offset: 0, length: MIB, byte: 0x5a }])).toEqual([]);
    await checkClean(join(dir, 'disk.0.snap/0'));
    await rm(join(dir, 'filler'));
  });

  it('snapshot delete whose rebase needs space: NO_SPACE, the snapshot kept, every chain reads the same', async () => {
    const dir = local('0/77');
    await rm(join(dir, 'disk.0'));
    await rm(join(dir, 'disk.0.snap'), { recursive: true });
    const disk = await qcow2Disk('0/77', 16, 2 * MIB, 0x5b);
    await snapshotCreate(snap('0/77', 0));
    await writePattern(disk, 'qcow2', 0x5c, 2 * MIB, 64 * KIB);
    await snapshotCreate(snap('0/77', 1));
    await fill(dir, 256 * KIB);
    // Deleting 0 copies its 2 MiB into file 1, which does not fit.
    const err = await failure(snapshotDelete({ ...snap('0/77', 0), active: false }));
    expect([err.code, err.reason]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'NO_SPACE']);
    expect(existsSync(join(dir, 'disk.0.snap/0'))).toBe(true);
    const both = [
      { offset: 0, length: 2 * MIB, byte: 0x5b },
      { offset: 2 * MIB, length: 64 * KIB, byte: 0x5c },
    ];
    expect(await patternMismatches(join(dir, 'disk.0.snap/1'), 'qcow2', both)).toEqual([]);
    expect(await patternMismatches(disk, 'qcow2', both)).toEqual([]);
    await checkClean(join(dir, 'disk.0.snap/1'));
    await rm(join(dir, 'filler'));
    expect(await snapshotDelete({ ...snap('0/77', 0), active: false })).toEqual({ existed: true });
    expect(await patternMismatches(disk, 'qcow2', both)).toEqual([]);
  });

  it('raw snapshot and Convert into a full filesystem: NO_SPACE, no destination, no temporary', async () => {
    const dir = local('0/77');
    await qemuImg('create', '-q', '-f', 'raw', join(dir, 'disk.5'), '8M');
    await writePattern(join(dir, 'disk.5'), 'raw', 0x33, 0, 2 * MIB);
    await qemuImg('create', '-q', '-f', 'qcow2', local('1/convert-source'), '8M');
    await fill(dir, 512 * KIB);
    const raw = await failure(
      snapshotCreate(snap('0/77', 0, { diskPath: ds('0/77/disk.5'), format: ImageFormat.IMAGE_FORMAT_RAW })),
    );
    expect(raw.reason).toBe('NO_SPACE');
    expect(readdirSync(join(dir, 'disk.5.snap'))).toEqual([]);
    const conv = await failure(
      call(client.convert.bind(client), {
        source: ds('1/convert-source'),
        destination: ds('0/77/copy'),
        format: ImageFormat.IMAGE_FORMAT_RAW,
        sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
        sparse: false,
        snapshot: undefined,
        imageCurrentState: false,
      }),
    );
    expect([conv.code, conv.reason]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'NO_SPACE']);
    expect(existsSync(join(dir, 'copy'))).toBe(false);
    expect(hidden(dir)).toEqual([]);
    expect(
      await patternMismatches(join(dir, 'disk.5'), 'raw', [{ offset: 0, length: 2 * MIB, byte: 0x33 }]),
    ).toEqual([]);
    await rm(join(dir, 'filler'));
  });
});
