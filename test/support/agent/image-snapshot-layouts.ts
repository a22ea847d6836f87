/**
 * The `<SOURCE>.snap` layouts a persistent image can be left in once its VM is gone
 * (docs/image-datastore.md#snapshots-of-persistent-images), built in an agent's datastore root
 * either through the agent's own RPCs, as one-storage's TM drivers call them, or with qemu-img
 * exactly as OpenNebula's drivers write them. Every layout holds snapshots 0 and 1 (the `.current`
 * one: 0 and 2) marked with qemu-io patterns, and a current state that differs from both.
 */
import {
  cpSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { rebase } from '../../../agent/src/qemu/qemu-img.js';
import {
  type AgentServiceClient,
  BackingStyle,
  ImageFormat,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { LOCATION, call } from './agent-fixture.js';
import { KIB, patternMismatches, qemuImg, writePattern } from './disk-testing.js';

export const SLOT = 64 * KIB;
const SIZE = '4M';
const BASE_BYTE = 0xa0;
/** Written into slot 1 after the last snapshot: a revert must bring the snapshot's byte back. */
const CURRENT_OVERWRITE = 0xee;
/** Written into the slot above the last snapshot's. */
const CURRENT_BYTE = 0xcc;

export type Format = 'raw' | 'qcow2';

/** How the next VM gets the image (see layoutBuilder's nextUse). */
export type NextUse = 'link' | 'copy chain' | 'relink' | 'source';

/** A built layout: the image's oned path and how to open what it holds. */
export interface Built {
  /** oned-view SOURCE. */
  readonly source: string;
  /** Local SOURCE. */
  readonly local: string;
  readonly format: Format;
  /** The snapshot ids oned knows. */
  readonly ids: readonly number[];
  /** Local path that opens snapshot `id` (from inside the snap dir, so any backing style resolves). */
  snapshotFile(id: number): string;
}

/** Slot bytes of snapshot `id` in a linear history: the base byte, then 0x10.. up to 0x10+id. */
export function snapshotSlots(id: number): number[] {
  return [BASE_BYTE, ...Array.from({ length: id + 1 }, (_, i) => 0x10 + i), 0];
}

/** Slot bytes of the current state after `n` snapshots. */
export function currentSlots(n: number): number[] {
  return [BASE_BYTE, CURRENT_OVERWRITE, ...Array.from({ length: n - 1 }, (_, i) => 0x11 + i), CURRENT_BYTE];
}

/** Mismatching ranges of `file` against slot bytes (empty when it holds them). */
export function slotMismatches(file: string, format: Format, slots: readonly number[]): Promise<string[]> {
  return patternMismatches(
    file,
    format,
    slots.map((byte, i) => ({ offset: i * SLOT, length: SLOT, byte })),
  );
}

/**
 * The local path that opens the image's current state: the highest-numbered file when
 * `.snap/0 -> SOURCE`, SOURCE's target when it is a link into the snap dir, else SOURCE.
 */
export function currentFile(b: Built): string {
  const snap = `${b.local}.snap`;
  const zero = lstatSync(join(snap, '0'), { throwIfNoEntry: false });
  return zero?.isSymbolicLink() ? activeLayerFile(b) : realpathSync(b.local);
}

/**
 * The snap dir's active layer: what SOURCE links to, else the highest-numbered file (with
 * `.snap/0 -> SOURCE`, and beside a standalone SOURCE: the last VM's active layer).
 */
export function activeLayerFile(b: Built): string {
  if (lstatSync(b.local).isSymbolicLink()) return realpathSync(b.local);
  const snap = `${b.local}.snap`;
  const ids = readdirSync(snap)
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
  return join(snap, String(Math.max(...ids)));
}

/** `qemu-img compare` with both formats pinned: true when the guest sees the same bytes. */
export async function sameContent(a: string, aFormat: Format, b: string, bFormat: Format): Promise<boolean> {
  const r = await runTool('qemu-img', ['compare', '-U', '-f', aFormat, '-F', bFormat, a, b]).catch(
    () => undefined,
  );
  return r !== undefined && /Images are identical/.test(r.stdout);
}

/** Builds layouts under `root` (served as LOCATION) with `client`, the agent serving it. */
export function layoutBuilder(client: AgentServiceClient, root: string) {
  const local = (rel: string): string => join(root, rel);
  const ds = (rel: string): string => `${LOCATION}/${rel}`;
  const fmt = (f: Format) => (f === 'raw' ? ImageFormat.IMAGE_FORMAT_RAW : ImageFormat.IMAGE_FORMAT_QCOW2);
  const slot = (file: string, format: Format, i: number, byte: number) =>
    writePattern(file, format, byte, i * SLOT, SLOT);

  const built = (
    name: string,
    format: Format,
    ids: number[] = [0, 1],
    files?: Map<number, number>,
  ): Built => ({
    source: ds(`1/${name}`),
    local: local(`1/${name}`),
    format,
    ids,
    snapshotFile: (id) => local(`1/${name}.snap/${files?.get(id) ?? id}`),
  });

  /** SOURCE created with the base byte in slot 0. */
  async function image(name: string, format: Format): Promise<string> {
    const file = local(`1/${name}`);
    await qemuImg('create', '-q', '-f', format, file, SIZE);
    await slot(file, format, 0, BASE_BYTE);
    return file;
  }

  /** The writes after the last snapshot, through `file` (what the VM wrote). */
  async function currentWrites(file: string, format: Format, n: number): Promise<void> {
    await slot(file, format, 1, CURRENT_OVERWRITE);
    await slot(file, format, n + 1, CURRENT_BYTE);
  }

  /** A VM disk's snapshot RPCs, as the coordinator's TM actions call them. */
  const snapshot = (diskPath: string, id: number, format: Format, snapDir = '') =>
    call(client.snapshotCreate.bind(client), {
      diskPath,
      snapId: id,
      format: fmt(format),
      snapDir,
      backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
      live: undefined,
    });

  /** One-storage's shared mode (LinkImage, SnapshotCreate into `<SOURCE>.snap`); raw: full copies. */
  async function oursShared(name: string, vm: number, format: Format): Promise<Built> {
    await image(name, format);
    const b = built(name, format);
    const disk = ds(`0/${vm}/disk.0`);
    await call(client.linkImage.bind(client), { source: b.source, diskPath: disk, format: fmt(format) });
    for (const id of b.ids) {
      await slot(local(`0/${vm}/disk.0`), format, id + 1, 0x10 + id);
      await snapshot(disk, id, format, `${b.source}.snap`);
    }
    await currentWrites(local(`0/${vm}/disk.0`), format, b.ids.length);
    rmSync(local(`0/${vm}`), { recursive: true });
    return b;
  }

  /**
   * OpenNebula's qcow2/shared `ln` + `snap_create` (docs/opennebula/snapshots.md): `.snap/0 -> SOURCE`
   * and overlays with absolute backing names (this host's path: DATASTORE_LOCATION is the root here).
   */
  async function oneShared(name: string, n = 2): Promise<Built> {
    const src = await image(name, 'qcow2');
    const snap = `${src}.snap`;
    mkdirSync(snap);
    symlinkSync(src, join(snap, '0'));
    symlinkSync('.', join(snap, `${name}.snap`));
    await slot(join(snap, '0'), 'qcow2', 1, 0x10);
    for (let id = 0; id < n; id++) {
      const top = join(snap, String(id + 1));
      await qemuImg(
        'create',
        '-q',
        '-f',
        'qcow2',
        '-o',
        'backing_fmt=qcow2',
        '-b',
        join(snap, String(id)),
        top,
      );
      if (id + 1 < n) await slot(top, 'qcow2', id + 2, 0x11 + id);
    }
    await currentWrites(join(snap, String(n)), 'qcow2', n);
    return built(
      name,
      'qcow2',
      Array.from({ length: n }, (_, i) => i),
    );
  }

  /**
   * oneShared with three snapshots after OpenNebula's live delete of snapshot 1: snapshot 2's data
   * committed into file 1, `2.current` naming it, file 2 gone, the active file 3 rebased onto 1.
   */
  async function oneSharedCurrent(name: string): Promise<Built> {
    await oneShared(name, 3);
    const snap = local(`1/${name}.snap`);
    await qemuImg('commit', '-q', '-f', 'qcow2', '-d', join(snap, '2'));
    await rebase(join(snap, '3'), { unsafe: true, backing: { name: join(snap, '1'), format: 'qcow2' } });
    rmSync(join(snap, '2'));
    writeFileSync(join(snap, '2.current'), `${join(snap, '1')}\n`);
    return built(name, 'qcow2', [0, 2], new Map([[2, 1]]));
  }

  /** OpenNebula's ssh TM (and raw under any TM): `.snap/<k>` full copies, SOURCE a plain file. */
  async function copies(name: string, format: Format): Promise<Built> {
    const src = await image(name, format);
    mkdirSync(`${src}.snap`);
    for (const id of [0, 1]) {
      await slot(src, format, id + 1, 0x10 + id);
      cpSync(src, join(`${src}.snap`, String(id)));
    }
    await currentWrites(src, format, 2);
    return built(name, format);
  }

  /** OpenNebula's tm/local mvds: `.snap/0` standalone, bare names `k-1`, SOURCE -> `<name>.snap/N`. */
  async function oneLocal(name: string): Promise<Built> {
    const snap = local(`1/${name}.snap`);
    mkdirSync(snap);
    await qemuImg('create', '-q', '-f', 'qcow2', join(snap, '0'), SIZE);
    await slot(join(snap, '0'), 'qcow2', 0, BASE_BYTE);
    await slot(join(snap, '0'), 'qcow2', 1, 0x10);
    for (const id of [0, 1]) {
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', `${id}`, `${id + 1}`], {
        cwd: snap,
      });
      if (id === 0) await slot(join(snap, '1'), 'qcow2', 2, 0x11);
    }
    await currentWrites(join(snap, '2'), 'qcow2', 2);
    symlinkSync(`${name}.snap/2`, local(`1/${name}`));
    return built(name, 'qcow2');
  }

  /**
   * A VM disk with snapshots 0 and 1 in its own snap dir (SnapshotCreate, relative names), each
   * snapshot's byte written before it, then the current writes.
   */
  async function vmChain(vm: number, disk: string): Promise<void> {
    for (const id of [0, 1]) {
      await slot(local(`0/${vm}/disk.0`), 'qcow2', id + 1, 0x10 + id);
      await snapshot(disk, id, 'qcow2');
    }
    await currentWrites(local(`0/${vm}/disk.0`), 'qcow2', 2);
  }

  /** MIXED mode: CopyImageChain to a local disk, snapshots there, SaveImageChain back (mvds.ssh). */
  async function mixedSaved(name: string, vm: number): Promise<Built> {
    await image(name, 'qcow2');
    const b = built(name, 'qcow2');
    const disk = ds(`0/${vm}/disk.0`);
    const q = ImageFormat.IMAGE_FORMAT_QCOW2;
    await call(client.copyImageChain.bind(client), { source: b.source, diskPath: disk, format: q });
    await vmChain(vm, disk);
    await call(client.saveImageChain.bind(client), { diskPath: disk, source: b.source, format: q });
    rmSync(local(`0/${vm}`), { recursive: true });
    return b;
  }

  /** A tm/local VM disk (a standalone copy of the image) with snapshots 0 and 1 and current writes. */
  async function localVmChain(vm: number): Promise<string> {
    const disk = ds(`0/${vm}/disk.0`);
    mkdirSync(local(`0/${vm}`), { recursive: true });
    await qemuImg('create', '-q', '-f', 'qcow2', local(`0/${vm}/disk.0`), SIZE);
    await slot(local(`0/${vm}/disk.0`), 'qcow2', 0, BASE_BYTE);
    await vmChain(vm, disk);
    return disk;
  }

  /**
   * One-storage's tm/local mvds: the disk's snap dir copied to `<SOURCE>.snap` as the data path
   * copies a tree (symlinks kept), RelinkDisk on SOURCE (`SOURCE -> <name>.snap/2`, names
   * `<name>.snap/K`), the VM's copied self link removed.
   */
  async function oursLocalLinked(name: string, vm: number): Promise<Built> {
    await image(name, 'qcow2');
    const b = built(name, 'qcow2');
    await localVmChain(vm);
    cpSync(local(`0/${vm}/disk.0.snap`), `${b.local}.snap`, { recursive: true, verbatimSymlinks: true });
    const q = ImageFormat.IMAGE_FORMAT_QCOW2;
    await call(client.relinkDisk.bind(client), { diskPath: b.source, active: '2', format: q });
    rmSync(`${b.local}.snap/disk.0.snap`);
    rmSync(local(`0/${vm}`), { recursive: true });
    return b;
  }

  /**
   * One-storage's tm/local mvds before it left the linked layout (images saved then are still read):
   * SOURCE a standalone copy of the disk's current state (Convert), the disk's snap dir copied
   * beside it as the data path copies a tree (symlinks kept).
   */
  async function oursLocal(name: string, vm: number): Promise<Built> {
    const b = built(name, 'qcow2');
    const disk = await localVmChain(vm);
    const q = ImageFormat.IMAGE_FORMAT_QCOW2;
    await call(client.convert.bind(client), {
      source: disk,
      destination: b.source,
      format: q,
      sourceFormat: q,
      sparse: true,
      snapshot: undefined,
      imageCurrentState: false,
    });
    cpSync(local(`0/${vm}/disk.0.snap`), `${b.local}.snap`, { recursive: true, verbatimSymlinks: true });
    rmSync(local(`0/${vm}`), { recursive: true });
    return b;
  }

  /**
   * What the next VM that uses the image opens, made by the RPC the TM driver calls for it: the
   * shared `ln` (LinkImage), MIXED `ln` (CopyImageChain), tm/local `clone` of a SOURCE linked into
   * its snap dir (the snap dir copied, then RelinkDisk); a standalone SOURCE is copied as it is.
   */
  async function nextUse(b: Built, how: NextUse, vm: number): Promise<string> {
    const disk = ds(`0/${vm}/disk.0`);
    const format = fmt(b.format);
    if (how === 'link') {
      await call(client.linkImage.bind(client), { source: b.source, diskPath: disk, format });
    } else if (how === 'copy chain') {
      await call(client.copyImageChain.bind(client), { source: b.source, diskPath: disk, format });
    } else if (how === 'relink') {
      cpSync(`${b.local}.snap`, local(`0/${vm}/disk.0.snap`), { recursive: true, verbatimSymlinks: true });
      const active = readlinkSync(b.local).split('/').pop() ?? '';
      await call(client.relinkDisk.bind(client), { diskPath: disk, active, format });
    } else {
      return b.local;
    }
    return local(`0/${vm}/disk.0`);
  }

  return {
    oursShared,
    oneShared,
    oneSharedCurrent,
    copies,
    oneLocal,
    mixedSaved,
    oursLocalLinked,
    oursLocal,
    nextUse,
    local,
    ds,
  };
}
