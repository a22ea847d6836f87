import { existsSync, lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ImageFormat, type ImageSnapshotRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { checkClean, qemuImg } from '../../test/support/agent/disk-testing.js';
import {
  type Built,
  activeLayerFile,
  type Format,
  type NextUse,
  currentFile,
  currentSlots,
  layoutBuilder,
  sameContent,
  slotMismatches,
  snapshotSlots,
} from '../../test/support/agent/image-snapshot-layouts.js';
import { REPEATS, repeat, useAgentServer } from '../../test/support/agent/server-test-fixture.js';
import { treeState } from '../../test/support/agent/image-snapshot-state.js';

/**
 * ImageSnapshotRevert / Delete / Flatten through a real agent over mutual TLS, on every layout a
 * persistent image's snap dir can be in (docs/image-datastore.md#snapshots-of-persistent-images),
 * with real qemu-img: the content after each action is checked against the snapshot's own file
 * (qemu-img compare, formats pinned) and against the bytes each snapshot was marked with.
 */
const ctx = useAgentServer();
const L = () => layoutBuilder(ctx.client, ctx.root);

interface Layout {
  label: string;
  build(name: string, vm: number): Promise<Built>;
  /**
   * For a chain: the backing name the new active layer stores for snapshot file `file` (the way the
   * layout names its files). Undefined for full copies, where a snapshot backs nothing.
   */
  name?: (image: string, file: number) => string;
  /** How the next VM gets the image after a revert. */
  next: NextUse;
}

const LAYOUTS: Layout[] = [
  {
    label: 'qcow2/shared in place (LinkImage, SnapshotCreate)',
    build: (n, vm) => L().oursShared(n, vm, 'qcow2'),
    name: (image, file) => `../../1/${image}.snap/${file}`,
    next: 'link',
  },
  {
    label: 'qcow2/shared in place, OpenNebula names (absolute)',
    build: (n) => L().oneShared(n),
    name: (image, file) => ctx.local(`1/${image}.snap/${file}`),
    next: 'link',
  },
  {
    label: 'qcow2/shared after a live delete (.current)',
    build: (n) => L().oneSharedCurrent(n),
    name: (image, file) => ctx.local(`1/${image}.snap/${file}`),
    next: 'link',
  },
  {
    label: 'raw image under the qcow2 TM (full copies)',
    build: (n, vm) => L().oursShared(n, vm, 'raw'),
    next: 'link',
  },
  { label: 'ssh TM, qcow2 full copies', build: (n) => L().copies(n, 'qcow2'), next: 'source' },
  { label: 'tm/local raw full copies', build: (n) => L().copies(n, 'raw'), next: 'source' },
  {
    label: 'tm/local qcow2, OpenNebula (SOURCE -> .snap/N, bare names)',
    build: (n) => L().oneLocal(n),
    name: (_image, file) => `${file}`,
    next: 'relink',
  },
  {
    label: 'MIXED mode mvds (SaveImageChain)',
    build: (n, vm) => L().mixedSaved(n, vm),
    name: (image, file) => `${image}.snap/${file}`,
    next: 'copy chain',
  },
  {
    label: 'tm/local qcow2, one-storage (SOURCE standalone)',
    build: (n, vm) => L().oursLocal(n, vm),
    name: (_image, file) => `disk.0.snap/${file}`,
    next: 'source',
  },
];

const wire = (f: Format) => (f === 'raw' ? ImageFormat.IMAGE_FORMAT_RAW : ImageFormat.IMAGE_FORMAT_QCOW2);
const req = (b: Built, snapId: number): ImageSnapshotRequest => ({
  source: b.source,
  format: wire(b.format),
  snapId,
});
const revert = (b: Built, id: number) => call(ctx.client.imageSnapshotRevert.bind(ctx.client), req(b, id));
const remove = (b: Built, id: number) => call(ctx.client.imageSnapshotDelete.bind(ctx.client), req(b, id));
const flatten = (b: Built, id: number) => call(ctx.client.imageSnapshotFlatten.bind(ctx.client), req(b, id));

let serial = 0;
/** A fresh image name and VM id per build (one agent serves the whole file). */
function next(): [string, number] {
  serial++;
  return [`img${serial.toString(16).padStart(4, '0')}`, 100 + serial];
}

async function expectSnapshotsIntact(b: Built, ids: readonly number[] = b.ids): Promise<void> {
  for (const id of ids)
    expect(await slotMismatches(b.snapshotFile(id), b.format, snapshotSlots(id)), `snapshot ${id}`).toEqual(
      [],
    );
}

/** The backing name stored in `file`'s own header (read with its format pinned). */
async function storedBackingName(file: string): Promise<string | undefined> {
  const info = JSON.parse(await qemuImg('info', '-U', '-f', 'qcow2', '--output=json', file)) as Record<
    string,
    unknown
  >;
  return info['backing-filename'] as string | undefined;
}

function staleMd5(b: Built): string {
  writeFileSync(`${b.local}.md5sum`, 'stale\n');
  return `${b.local}.md5sum`;
}

describe.each(LAYOUTS)('$label', (layout) => {
  it('revert makes the current state the snapshot, keeps every snapshot; repeats give the same', async () => {
    const b = await layout.build(...next());
    const md5 = staleMd5(b);
    expect(await slotMismatches(currentFile(b), b.format, currentSlots(Math.max(...b.ids) + 1))).toEqual([]);
    const [first, last] = [b.ids[0] ?? 0, b.ids[b.ids.length - 1] ?? 0];
    // To the oldest, then forward to the newest, then back: each from the state the last one left.
    for (const id of [first, last, first]) {
      expect(await repeat(() => revert(b, id))).toEqual(Array(REPEATS).fill({ changed: true }));
      const current = currentFile(b);
      expect(
        await sameContent(current, b.format, b.snapshotFile(id), b.format),
        `current vs snapshot ${id}`,
      ).toBe(true);
      expect(await slotMismatches(current, b.format, snapshotSlots(id))).toEqual([]);
      await expectSnapshotsIntact(b);
      if (b.format === 'qcow2') await checkClean(current);
      expect(existsSync(md5)).toBe(false);
      if (layout.name) {
        const image = basename(b.local);
        const file = Number(basename(b.snapshotFile(id)));
        expect(await storedBackingName(activeLayerFile(b))).toBe(layout.name(image, file));
      }
    }
    const disk = await L().nextUse(b, layout.next, next()[1]);
    expect(await slotMismatches(disk, b.format, snapshotSlots(first))).toEqual([]);
  });

  it('delete removes a snapshot nothing is built on, refuses one that backs a file; a repeat changes nothing', async () => {
    const b = await layout.build(...next());
    const [first, last] = [b.ids[0] ?? 0, b.ids[b.ids.length - 1] ?? 0];
    const chain = layout.name !== undefined;
    if (chain) {
      const before = await treeState(b.local);
      for (const id of b.ids) {
        const f = await failure(remove(b, id));
        expect([f.code, f.reason], f.message).toEqual([grpc.status.FAILED_PRECONDITION, 'BAD_LAYOUT']);
      }
      expect(await treeState(b.local)).toEqual(before);
      // After a revert to the oldest, the newest snapshot backs nothing.
      await revert(b, first);
    }
    const md5 = staleMd5(b);
    const file = b.snapshotFile(last);
    expect(await repeat(() => remove(b, last))).toEqual([
      { changed: true },
      ...Array(REPEATS - 1).fill({ changed: false }),
    ]);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${b.local}.snap/${last}.current`)).toBe(false);
    expect(existsSync(md5)).toBe(false);
    await expectSnapshotsIntact(b, [first]);
    const now = chain ? snapshotSlots(first) : currentSlots(Math.max(...b.ids) + 1);
    expect(await slotMismatches(currentFile(b), b.format, now)).toEqual([]);
    if (chain) {
      const f = await failure(remove(b, first));
      expect([f.code, f.reason], f.message).toEqual([grpc.status.FAILED_PRECONDITION, 'BAD_LAYOUT']);
    }
    expect(await remove(b, 7)).toEqual({ changed: false });
  });

  it('flatten leaves SOURCE a standalone file holding the snapshot, no snap dir; a repeat changes nothing', async () => {
    for (const pick of ['first', 'last'] as const) {
      const b = await layout.build(...next());
      const id = (pick === 'first' ? b.ids[0] : b.ids[b.ids.length - 1]) ?? 0;
      const md5 = staleMd5(b);
      expect(await repeat(() => flatten(b, id))).toEqual([
        { changed: true },
        ...Array(REPEATS - 1).fill({ changed: false }),
      ]);
      expect(lstatSync(b.local).isFile()).toBe(true);
      const info = JSON.parse(
        await qemuImg('info', '-U', '-f', b.format, '--output=json', b.local),
      ) as Record<string, unknown>;
      expect(info['backing-filename']).toBeUndefined();
      expect(await slotMismatches(b.local, b.format, snapshotSlots(id))).toEqual([]);
      expect(existsSync(`${b.local}.snap`)).toBe(false);
      expect(existsSync(md5)).toBe(false);
      expect(readdirSync(ctx.local('1')).filter((n) => n.startsWith('.'))).toEqual([]);
    }
  });
});
