import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_NAME, call, failure, ds } from '../support/agent/agent-fixture.js';
import { useAgentServer } from '../support/agent/server-test-fixture.js';
import { connectionCounter, networkBackings, qcow2Header } from './formats-layouts.js';
import {
  BackingStyle,
  BackupMode,
  FreezeMode,
  ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';

/**
 * Security review, class 1 (docs/security.md#the-attack-tests): a qcow2 layer whose backing name is a network protocol (json:{nbd}, nbd://,
 * http://) made the agent open outbound TCP connections before failing. A real listener on loopback
 * counts connections: none may arrive, whatever the RPC, and each call fails with one BAD_LAYOUT
 * line naming host and path.
 */
// With an export listener, so ExportImage reaches the chain instead of EXPORT_DISABLED.
const ctx = useAgentServer({ export: { listen: '127.0.0.1:0' } });

let listener: Awaited<ReturnType<typeof connectionCounter>>;
const variants: Array<{ name: string; backing: string; vm: number }> = [];

beforeAll(async () => {
  listener = await connectionCounter();
  networkBackings(listener.port).forEach((b, i) => variants.push({ ...b, vm: 100 + i }));
  for (const v of variants) {
    // In a VM directory, as the active layer of a snap chain (disk.0 -> disk.0.snap/0).
    await qcow2Header(ctx.local(`0/${v.vm}/disk.0.snap/0`), v.backing);
    await qcow2Header(ctx.local(`0/${v.vm}/disk.1`), v.backing);
    // In the image datastore, as a persistent image's file.
    await qcow2Header(ctx.local(`1/image-${v.vm}`), v.backing);
  }
});

afterAll(async () => {
  await listener?.close();
});

describe.each([0, 1, 2])('backing name variant %i', (i) => {
  const v = (): { name: string; backing: string; vm: number } => variants[i]!;
  const rpcs: Array<{ rpc: string; send: (v: { vm: number }) => Promise<unknown> }> = [
    {
      rpc: 'Resize',
      send: ({ vm }) =>
        call(ctx.client.resize.bind(ctx.client), {
          path: ds(`0/${vm}/disk.1`),
          sizeMb: 4,
          preallocate: false,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    },
    {
      rpc: 'Convert (cpds)',
      send: ({ vm }) =>
        call(ctx.client.convert.bind(ctx.client), {
          source: ds(`0/${vm}/disk.1`),
          destination: ds(`1/export-${vm}`),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          sourceFormat: ImageFormat.IMAGE_FORMAT_QCOW2,
          sparse: true,
          snapshot: undefined,
          imageCurrentState: false,
        }),
    },
    {
      rpc: 'ImageInfo',
      send: ({ vm }) =>
        call(ctx.client.imageInfo.bind(ctx.client), {
          path: ds(`0/${vm}/disk.1`),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    },
    {
      rpc: 'SnapshotCreate',
      send: ({ vm }) =>
        call(ctx.client.snapshotCreate.bind(ctx.client), {
          diskPath: ds(`0/${vm}/disk.1`),
          snapId: 0,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          snapDir: '',
          backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
          live: undefined,
        }),
    },
    {
      rpc: 'SnapshotCreate on a snap chain',
      send: ({ vm }) =>
        call(ctx.client.snapshotCreate.bind(ctx.client), {
          diskPath: ds(`0/${vm}/disk.0.snap/0`),
          snapId: 0,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          snapDir: ds(`0/${vm}/disk.0.snap`),
          backingStyle: BackingStyle.BACKING_STYLE_BARE,
          live: undefined,
        }),
    },
    {
      rpc: 'LinkImage (ln)',
      send: ({ vm }) =>
        call(ctx.client.linkImage.bind(ctx.client), {
          source: ds(`1/image-${vm}`),
          diskPath: ds(`0/${vm}/disk.2`),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    },
    {
      rpc: 'CloneOverlay (clone)',
      send: ({ vm }) =>
        call(ctx.client.cloneOverlay.bind(ctx.client), {
          source: ds(`1/image-${vm}`),
          diskPath: ds(`0/${vm}/disk.3`),
          standalone: false,
          sparse: true,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    },
    {
      rpc: 'ExportImage (datastore export)',
      send: ({ vm }) =>
        call(ctx.client.exportImage.bind(ctx.client), {
          source: ds(`1/image-${vm}`),
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
          ttlSeconds: 0,
          label: '',
        }),
    },
    {
      rpc: 'BackupPrepare FULL',
      send: ({ vm }) =>
        call(ctx.client.backupPrepare.bind(ctx.client), {
          vmDir: ds(`0/${vm}`),
          vmId: vm,
          domain: '',
          live: false,
          disks: [{ diskId: 1, target: 'vdb', format: ImageFormat.IMAGE_FORMAT_QCOW2 }],
          mode: BackupMode.BACKUP_MODE_FULL,
          backupId: 0,
          parentId: -1,
          freeze: FreezeMode.FREEZE_MODE_UNSPECIFIED,
          vmXml: '<VM/>',
        }),
    },
  ];

  it.each(rpcs)('$rpc opens no connection and fails with one BAD_LAYOUT line', async (r) => {
    const f = await failure(r.send(v()));
    expect(listener.count()).toBe(0);
    expect(f.reason).toBe('BAD_LAYOUT');
    expect(f.message).toContain(`${AGENT_NAME}:`);
    expect(f.message).not.toContain('\n');
    await expect(stat(ctx.local(`1/export-${v().vm}`))).rejects.toThrow();
  });
});
