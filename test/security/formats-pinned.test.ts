import { mkfifo } from './formats-fifo.js';
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { call, failure, ds } from '../support/agent/agent-fixture.js';
import { AGENT_NAME } from '../support/agent/agent-fixture.js';
import { useAgentServer } from '../support/agent/server-test-fixture.js';
import { MIB, SECRET_BYTE, holdsSecret, qcow2Header, secretDisk } from './formats-layouts.js';
import { BackupMode, FreezeMode, ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';

/**
 * Security review, class 1 (docs/security.md#the-attack-tests): a guest writes a qcow2 header into its own RAW disk, naming another VM's disk as
 * backing file. Every agent RPC that opens the disk is told its format (raw) and must read the
 * guest's own bytes, never the other VM's.
 */
const ctx = useAgentServer();

/** The victim: VM 43's raw disk. The attackers: VM 42 (absolute name) and VM 44 (relative name). */
const VICTIM = '0/43/disk.0';
const ATTACKERS = [
  { name: 'absolute backing name', vm: 42, backing: () => ctx.local(VICTIM) },
  { name: 'relative ../43/disk.0', vm: 44, backing: () => '../43/disk.0' },
];

beforeAll(async () => {
  await secretDisk(ctx.local(VICTIM));
  for (const a of ATTACKERS) await qcow2Header(ctx.local(`0/${a.vm}/disk.0`), a.backing(), { sizeMb: 1 });
});

afterAll(async () => {
  // The victim's disk is never written by any of the calls.
  expect(await readFile(ctx.local(VICTIM))).toEqual(Buffer.alloc(MIB, SECRET_BYTE));
});

describe.each(ATTACKERS)('a raw disk holding a qcow2 header ($name)', (a) => {
  const disk = `0/${a.vm}/disk.0`;

  it('Convert (cpds) exports the raw bytes of the guest disk, not the other VM disk', async () => {
    const dest = `1/export-${a.vm}`;
    await call(ctx.client.convert.bind(ctx.client), {
      source: ds(disk),
      destination: ds(dest),
      format: ImageFormat.IMAGE_FORMAT_RAW,
      sourceFormat: ImageFormat.IMAGE_FORMAT_RAW,
      sparse: true,
      snapshot: undefined,
      imageCurrentState: false,
    });
    expect(await holdsSecret(ctx.local(dest))).toBe(false);
    expect(await readFile(ctx.local(dest))).toEqual(await readFile(ctx.local(disk)));
  });

  it('ImageInfo describes one raw layer (a raw disk has no backing chain)', async () => {
    const res = await call(ctx.client.imageInfo.bind(ctx.client), {
      path: ds(disk),
      format: ImageFormat.IMAGE_FORMAT_RAW,
    });
    expect(res.layers.map((l) => [l.format, l.backingFilename, l.backingFormat])).toEqual([
      [ImageFormat.IMAGE_FORMAT_RAW, '', ImageFormat.IMAGE_FORMAT_UNSPECIFIED],
    ]);
  });

  it('Resize grows the raw file itself, keeping the header bytes as data', async () => {
    const before = await readFile(ctx.local(disk));
    await call(ctx.client.resize.bind(ctx.client), {
      path: ds(disk),
      sizeMb: 2,
      preallocate: false,
      format: ImageFormat.IMAGE_FORMAT_RAW,
    });
    expect((await stat(ctx.local(disk))).size).toBe(2 * MIB);
    expect((await readFile(ctx.local(disk))).subarray(0, MIB)).toEqual(before);
  });

  it('BackupPrepare FULL copies the raw bytes of the guest disk', async () => {
    await call(ctx.client.backupPrepare.bind(ctx.client), {
      vmDir: ds(`0/${a.vm}`),
      vmId: a.vm,
      domain: '',
      live: false,
      disks: [{ diskId: 0, target: 'vda', format: ImageFormat.IMAGE_FORMAT_RAW }],
      mode: BackupMode.BACKUP_MODE_FULL,
      backupId: 0,
      parentId: -1,
      freeze: FreezeMode.FREEZE_MODE_UNSPECIFIED,
      vmXml: '<VM/>',
    });
    const backup = ctx.local(`0/${a.vm}/backup/disk.0.0`);
    const r = await runTool('qemu-img', [
      'compare',
      '-U',
      '-f',
      'raw',
      '-F',
      'qcow2',
      ctx.local(disk),
      backup,
    ]);
    expect(r.stdout).toMatch(/Images are identical/);
    await call(ctx.client.backupFinish.bind(ctx.client), {
      vmDir: ds(`0/${a.vm}`),
      domain: '',
      live: false,
      failed: false,
    });
  });
});

describe('a backing file no layout may point at is refused before anything opens it', () => {
  /**
   * VM 45's "disk" is a FIFO: opening it for reading blocks until a writer comes, so a call that
   * opens it hangs until its deadline instead of failing at once with the layout error.
   */
  const FIFO_DISK = '0/45/disk.0';
  const cases = [
    { name: "another VM's disk, absolute local name", vm: 60, backing: () => ctx.local(FIFO_DISK) },
    { name: "another VM's disk, relative name", vm: 61, backing: () => '../45/disk.0' },
    { name: "another VM's disk, oned's name", vm: 62, backing: () => ds(FIFO_DISK) },
    { name: "another VM's snapshot", vm: 63, backing: () => '../45/disk.0.snap/0' },
    { name: 'a file outside the roots', vm: 64, backing: () => '/etc/hostname' },
  ];

  beforeAll(async () => {
    await mkfifo(ctx.local(FIFO_DISK));
    await mkfifo(ctx.local('0/45/disk.0.snap/0'));
    for (const c of cases) await qcow2Header(ctx.local(`0/${c.vm}/disk.0`), c.backing());
  });

  it.each(cases)('$name: Convert, Resize and ImageInfo fail at once naming host and path', async (c) => {
    const disk = ds(`0/${c.vm}/disk.0`);
    const calls = [
      () =>
        call(ctx.client.convert.bind(ctx.client), {
          source: disk,
          destination: ds(`1/export-${c.vm}`),
          format: ImageFormat.IMAGE_FORMAT_RAW,
          sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
          sparse: true,
          snapshot: undefined,
          imageCurrentState: false,
        }),
      () =>
        call(ctx.client.resize.bind(ctx.client), {
          path: disk,
          sizeMb: 2,
          preallocate: false,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
      () =>
        call(ctx.client.imageInfo.bind(ctx.client), {
          path: disk,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    ];
    for (const send of calls) {
      const f = await failure(send());
      expect(['BAD_LAYOUT', 'PATH_OUTSIDE_ROOTS']).toContain(f.reason);
      expect(f.message).toContain(`${AGENT_NAME}:`);
      expect(f.message).not.toContain('\n');
    }
    await expect(stat(ctx.local(`1/export-${c.vm}`))).rejects.toThrow();
  });

  it('a chain into the image datastore, named as oned names it, is accepted', async () => {
    await secretDisk(ctx.local('1/image-a'), 1);
    await qcow2Header(ctx.local('0/70/disk.0'), ds('1/image-a'));
    await qcow2Header(ctx.local('0/71/disk.0'), '../../1/image-a');
    for (const vm of [70, 71]) {
      const res = await call(ctx.client.imageInfo.bind(ctx.client), {
        path: ds(`0/${vm}/disk.0`),
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      });
      expect(res.layers.map((l) => l.format)).toEqual([
        ImageFormat.IMAGE_FORMAT_QCOW2,
        ImageFormat.IMAGE_FORMAT_RAW,
      ]);
    }
  });
});

describe('a request that opens an image without a format is refused', () => {
  beforeAll(async () => {
    await secretDisk(ctx.local('0/80/disk.0'));
  });

  // IMAGE_FORMAT_UNSPECIFIED is proto3's zero: on the wire, the same as leaving the field out.
  const requests: Array<{ rpc: string; field: string; send: () => Promise<unknown> }> = [
    {
      rpc: 'Resize',
      field: 'format',
      send: () =>
        call(ctx.client.resize.bind(ctx.client), {
          path: ds('0/80/disk.0'),
          sizeMb: 2,
          preallocate: false,
          format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        }),
    },
    {
      rpc: 'Convert',
      field: 'source_format',
      send: () =>
        call(ctx.client.convert.bind(ctx.client), {
          source: ds('0/80/disk.0'),
          destination: ds('1/export-80'),
          format: ImageFormat.IMAGE_FORMAT_RAW,
          sparse: true,
          snapshot: undefined,
          imageCurrentState: false,
          sourceFormat: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        }),
    },
    {
      rpc: 'ImageInfo',
      field: 'format',
      send: () =>
        call(ctx.client.imageInfo.bind(ctx.client), {
          path: ds('0/80/disk.0'),
          format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        }),
    },
    {
      rpc: 'CloneOverlay',
      field: 'format',
      send: () =>
        call(ctx.client.cloneOverlay.bind(ctx.client), {
          source: ds('0/80/disk.0'),
          diskPath: ds('0/81/disk.0'),
          standalone: false,
          sparse: true,
          format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        }),
    },
    {
      rpc: 'LinkImage',
      field: 'format',
      send: () =>
        call(ctx.client.linkImage.bind(ctx.client), {
          source: ds('0/80/disk.0'),
          diskPath: ds('0/82/disk.0'),
          format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED,
        }),
    },
    {
      rpc: 'BackupPrepare',
      field: 'format',
      send: () =>
        call(ctx.client.backupPrepare.bind(ctx.client), {
          vmDir: ds('0/80'),
          vmId: 80,
          domain: '',
          live: false,
          disks: [{ diskId: 0, target: 'vda', format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED }],
          mode: BackupMode.BACKUP_MODE_FULL,
          backupId: 0,
          parentId: -1,
          freeze: FreezeMode.FREEZE_MODE_UNSPECIFIED,
          vmXml: '<VM/>',
        }),
    },
  ];

  it.each(requests)('$rpc without $field: INVALID_ARGUMENT naming the field', async (r) => {
    const f = await failure(r.send());
    expect(f.reason).toBe('INVALID_ARGUMENT');
    expect(f.message).toContain(r.field);
  });
});
