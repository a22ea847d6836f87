import { mkdirSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../common/src/tools/run-tool.js';
import { rebase } from './qemu/qemu-img.js';
import { ImageFormat, type ImageSnapshotRequest } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { call, failure } from '../../test/support/agent/agent-fixture.js';
import { MIB, qemuImg, writePattern } from '../../test/support/agent/disk-testing.js';
import {
  type Built,
  layoutBuilder,
  slotMismatches,
} from '../../test/support/agent/image-snapshot-layouts.js';
import { treeState } from '../../test/support/agent/image-snapshot-state.js';
import { ds } from '../../test/support/agent/agent-fixture.js';
import { useAgentServer } from '../../test/support/agent/server-test-fixture.js';

/**
 * ImageSnapshotDelete / Revert / Flatten refusals through a real agent over mutual TLS: the code
 * and reason on the wire, and SOURCE, its snap dir and its `.md5sum` exactly as they were.
 */
const ctx = useAgentServer();
const L = () => layoutBuilder(ctx.client, ctx.root);
const { NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED } =
  grpc.status;
const TMPFS_SIZE = '8m';
let tmpfs: string | undefined;

beforeAll(async () => {
  const dir = ctx.local('101');
  mkdirSync(dir);
  // Needs root (as on the project's machines); the NO_SPACE test is skipped without it.
  tmpfs = await runTool('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dir]).then(
    () => dir,
    () => undefined,
  );
});

afterAll(async () => {
  if (tmpfs) await runTool('umount', [tmpfs]);
});

type Action = 'delete' | 'revert' | 'flatten';
const ACTIONS: readonly Action[] = ['delete', 'revert', 'flatten'];

function act(action: Action, r: ImageSnapshotRequest) {
  const c = ctx.client;
  if (action === 'delete') return call(c.imageSnapshotDelete.bind(c), r);
  if (action === 'revert') return call(c.imageSnapshotRevert.bind(c), r);
  return call(c.imageSnapshotFlatten.bind(c), r);
}

const req = (b: Pick<Built, 'source' | 'format'>, snapId: number): ImageSnapshotRequest => ({
  source: b.source,
  format: b.format === 'raw' ? ImageFormat.IMAGE_FORMAT_RAW : ImageFormat.IMAGE_FORMAT_QCOW2,
  snapId,
});

/** Every action on snapshot `id` fails with `code`/`reason` (the message matching `says`); nothing changed. */
async function expectRefused(
  b: Built,
  id: number,
  code: grpc.status,
  reason: string,
  says?: RegExp,
): Promise<void> {
  writeFileSync(`${b.local}.md5sum`, 'cached\n');
  const before = await treeState(b.local);
  for (const action of ACTIONS) {
    const f = await failure(act(action, req(b, id)));
    expect([action, f.code, f.reason], f.message).toEqual([action, code, reason]);
    if (says) expect(f.message).toMatch(says);
    expect(f.message).toContain(`host01:${b.source}`);
    expect(await treeState(b.local), action).toEqual(before);
  }
}

describe('image snapshot RPCs: what is missing', () => {
  it('a missing snapshot: revert and flatten NOT_FOUND naming it, delete a success that changes nothing', async () => {
    const b = await L().oneShared('missing1');
    const before = await treeState(b.local);
    for (const action of ['revert', 'flatten'] as const) {
      const f = await failure(act(action, req(b, 7)));
      expect([f.code, f.reason]).toEqual([NOT_FOUND, 'NOT_FOUND']);
      expect(f.message).toMatch(/snapshot 7 does not exist \(no missing1\.snap\/7\)/);
    }
    expect(await act('delete', req(b, 7))).toEqual({ changed: false });
    expect(await treeState(b.local)).toEqual(before);
  });

  it('a missing image is NOT_FOUND; an image without a snap dir: delete and flatten change nothing, revert NOT_FOUND', async () => {
    for (const action of ACTIONS) {
      const f = await failure(act(action, req({ source: ds('1/nothere'), format: 'qcow2' }, 0)));
      expect([f.code, f.reason, f.message]).toEqual([
        NOT_FOUND,
        'NOT_FOUND',
        expect.stringMatching(/image does not exist/),
      ]);
    }
    await qemuImg('create', '-q', '-f', 'qcow2', ctx.local('1/plain1'), '1M');
    const plain = { source: ds('1/plain1'), format: 'qcow2' as const };
    expect(await act('delete', req(plain, 0))).toEqual({ changed: false });
    expect(await act('flatten', req(plain, 0))).toEqual({ changed: false });
    expect((await failure(act('revert', req(plain, 0)))).reason).toBe('NOT_FOUND');
  });
});

describe('image snapshot RPCs: layouts refused, nothing changed', () => {
  it('a numbered entry that is a symlink: outside the roots, or to another image', async () => {
    const b = await L().oneShared('symout1');
    rmSync(`${b.local}.snap/1`);
    symlinkSync('/etc/passwd', `${b.local}.snap/1`);
    await expectRefused(b, 0, FAILED_PRECONDITION, 'BAD_LAYOUT', /symout1\.snap\/1 is not a regular file/);
    const c = await L().copies('symimg1', 'raw');
    await qemuImg('create', '-q', '-f', 'raw', ctx.local('1/other1'), '4M');
    rmSync(`${c.local}.snap/0`);
    symlinkSync('../other1', `${c.local}.snap/0`);
    await expectRefused(c, 1, FAILED_PRECONDITION, 'BAD_LAYOUT', /symimg1\.snap\/0 is not a regular file/);
  });

  it('a chain into another VM directory, or onto another image', async () => {
    const b = await L().oneShared('vmdir1');
    mkdirSync(ctx.local('0/77'), { recursive: true });
    await qemuImg('create', '-q', '-f', 'qcow2', ctx.local('0/77/disk.0'), '4M');
    await rebase(`${b.local}.snap/1`, {
      unsafe: true,
      backing: { name: ctx.local('0/77/disk.0'), format: 'qcow2' },
    });
    await expectRefused(
      b,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /vmdir1\.snap\/1 is backed by \S+\/0\/77\/disk\.0, not by a file of vmdir1\.snap/,
    );
    // Below `.snap/0 -> SOURCE`, SOURCE's own chain: a layer in a VM directory is refused as unsafe.
    const s = await L().oneShared('vmdir2');
    await rebase(s.local, { unsafe: true, backing: { name: ctx.local('0/77/disk.0'), format: 'qcow2' } });
    await expectRefused(
      s,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /neither in this disk's VM directory nor in an image datastore/,
    );
    const c = await L().oneLocal('onimg1');
    await qemuImg('create', '-q', '-f', 'qcow2', ctx.local('1/other2'), '4M');
    await rebase(`${c.local}.snap/1`, { unsafe: true, backing: { name: '../other2', format: 'qcow2' } });
    await expectRefused(
      c,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /onimg1\.snap\/1 is backed by \.\.\/other2, not by a file of onimg1\.snap/,
    );
  });

  it('a loop in the chain, a raw image that is a link or holds a qcow2 copy, a .current naming the active layer', async () => {
    const b = await L().oneLocal('loop1');
    await rebase(`${b.local}.snap/0`, { unsafe: true, backing: { name: '2', format: 'qcow2' } });
    await expectRefused(b, 0, FAILED_PRECONDITION, 'BAD_LAYOUT', /refers to itself/);
    const r = await L().copies('rawlink1', 'raw');
    rmSync(r.local);
    symlinkSync('rawlink1.snap/1', r.local);
    await expectRefused(r, 0, FAILED_PRECONDITION, 'BAD_LAYOUT', /a raw image is a symlink/);
    // OpenNebula's fs snap_revert of a raw image on the qcow2 TM: the newest copy replaced by a
    // qcow2 overlay on the snapshot (written here without opening it, as the raw base is not qcow2).
    const fsReverted = await L().copies('fsraw1', 'raw');
    rmSync(`${fsReverted.local}.snap/1`);
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-u',
      '-F',
      'qcow2',
      '-b',
      `${fsReverted.local}.snap/0`,
      `${fsReverted.local}.snap/1`,
      '4M',
    );
    await expectRefused(
      fsReverted,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /fsraw1\.snap\/1 holds a qcow2 image but the image is raw/,
    );
    const cur = await L().oneShared('curact1');
    writeFileSync(`${cur.local}.snap/1.current`, `${cur.local}.snap/2\n`);
    await expectRefused(
      cur,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /1\.current names the active layer curact1\.snap\/2/,
    );
  });

  it('SOURCE linked to another image: BAD_LAYOUT; through a symlink out of the roots: PATH_OUTSIDE_ROOTS', async () => {
    const b = await L().oneLocal('srclink1');
    await qemuImg('create', '-q', '-f', 'qcow2', ctx.local('1/other3'), '4M');
    rmSync(b.local);
    symlinkSync('other3', b.local);
    await expectRefused(
      b,
      0,
      FAILED_PRECONDITION,
      'BAD_LAYOUT',
      /links to other3, which is not a numbered file of srclink1\.snap/,
    );
    rmSync(b.local);
    symlinkSync('/etc/passwd', b.local);
    await expectRefused(b, 0, PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS');
  });

  it('bad requests name the field', async () => {
    const b = await L().copies('args1', 'raw');
    const cases: Array<[ImageSnapshotRequest, grpc.status, string, RegExp]> = [
      [
        { ...req(b, 0), format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED },
        INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /format/,
      ],
      [{ ...req(b, 0), source: '' }, INVALID_ARGUMENT, 'INVALID_ARGUMENT', /source is required/],
      [{ ...req(b, 0), source: ds('1/../1/args1') }, INVALID_ARGUMENT, 'UNSAFE_PATH', /source/],
      [{ ...req(b, 0), source: '/etc/passwd' }, PERMISSION_DENIED, 'PATH_OUTSIDE_ROOTS', /source/],
    ];
    const before = await treeState(b.local);
    for (const action of ACTIONS) {
      for (const [r, code, reason, says] of cases) {
        const f = await failure(act(action, r));
        expect([f.code, f.reason], f.message).toEqual([code, reason]);
        expect(f.message).toMatch(says);
      }
    }
    expect(await treeState(b.local)).toEqual(before);
  });
});

describe('image snapshot RPCs: a full datastore', () => {
  it.skipIf(process.getuid?.() !== 0)(
    'a flatten that does not fit is RESOURCE_EXHAUSTED (NO_SPACE); nothing changed, no temporary left',
    async () => {
      expect(tmpfs, 'tmpfs mounted').toBeDefined();
      const src = ctx.local('101/full1');
      const snap = `${src}.snap`;
      mkdirSync(snap);
      // .snap/0 standalone and .snap/1 on it hold 3 MiB each: the flat copy needs 6 of the 8 MiB.
      await qemuImg('create', '-q', '-f', 'qcow2', join(snap, '0'), '8M');
      await writePattern(join(snap, '0'), 'qcow2', 0x5a, 0, 3 * MIB);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', '0', '1'], {
        cwd: snap,
      });
      await writePattern(join(snap, '1'), 'qcow2', 0x5b, 3 * MIB, 3 * MIB);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', '1', '2'], {
        cwd: snap,
      });
      symlinkSync('full1.snap/2', src);
      expect(statfsSync(ctx.local('101')).bavail * statfsSync(ctx.local('101')).bsize).toBeLessThan(6 * MIB);
      const b: Built = {
        source: ds('101/full1'),
        local: src,
        format: 'qcow2',
        ids: [0, 1],
        snapshotFile: (id) => join(snap, String(id)),
      };
      const before = await treeState(src);
      const f = await failure(act('flatten', req(b, 1)));
      expect([f.code, f.reason], f.message).toEqual([RESOURCE_EXHAUSTED, 'NO_SPACE']);
      expect(await treeState(src)).toEqual(before);
      expect(readdirSync(ctx.local('101')).filter((n) => n.startsWith('.'))).toEqual([]);
      expect(await slotMismatches(join(snap, '0'), 'qcow2', [0x5a])).toEqual([]);
    },
  );
});
