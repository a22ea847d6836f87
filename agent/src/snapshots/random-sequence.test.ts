import { mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { convertImage } from '../rpc/convert.js';
import { snapshotCreate } from '../rpc/snapshot-create.js';
import { snapshotDelete } from '../rpc/snapshot-delete.js';
import { snapshotRevert } from '../rpc/snapshot-revert.js';
import { ds, makeTempDir } from '../../../test/support/agent/agent-fixture.js';
import {
  KIB,
  checkClean,
  localAgent,
  patternMismatches,
  prng,
  qemuImg,
  writePattern,
} from '../../../test/support/agent/disk-testing.js';
import { BackingStyle } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { wireFormat } from '../../../test/support/wire-enums.js';

/**
 * Long seeded sequences of write / create / revert / delete / convert (and immediate repeats) on
 * one qcow2 and one raw disk, checked after every step against a model of what the active disk and
 * every snapshot must read. A failure names the seed and the step, so it can be replayed.
 */
const SEED = 20261126;
const STEPS = 60;
const SLOTS = 16;
const SLOT = 64 * KIB;
const SIZE_MB = (SLOTS * SLOT) / (1024 * KIB);
const FULL_CHECK_EVERY = 5;

const base = await makeTempDir('snapshot-sequence-');
const root = join(base, 'datastores');
const { agent, call } = localAgent(root);
const local = (rel: string): string => join(root, rel);
afterAll(() => rmSync(base, { recursive: true, force: true }));

type Content = number[];
interface Model {
  active: Content;
  snaps: Map<number, Content>;
  nextId: number;
  /** The snapshot the disk runs on (oned's ACTIVE=YES), if any. */
  current: number | undefined;
}

async function expectContent(file: string, format: string, content: Content, label: string): Promise<void> {
  const ranges = content.map((byte, i) => ({ offset: i * SLOT, length: SLOT, byte }));
  expect(await patternMismatches(file, format, ranges), label).toEqual([]);
}

async function runSequence(format: 'qcow2' | 'raw', seed: number): Promise<Record<string, number>> {
  const rnd = prng(seed);
  const vm = `0/${format === 'qcow2' ? 50 : 51}`;
  const disk = local(`${vm}/disk.0`);
  const snapDir = `${disk}.snap`;
  mkdirSync(local(vm), { recursive: true });
  mkdirSync(local('1'), { recursive: true });
  const model: Model = {
    active: new Array<number>(SLOTS).fill(0),
    snaps: new Map(),
    nextId: 0,
    current: undefined,
  };
  if (format === 'qcow2') {
    // A qcow2/shared clone: disk.0 -> disk.0.snap/0, an overlay on the image.
    const image = local(`1/image-${seed}`);
    await qemuImg('create', '-q', '-f', 'qcow2', image, `${SIZE_MB}M`);
    await writePattern(image, 'qcow2', 0xa0, 0, SLOT);
    model.active[0] = 0xa0;
    mkdirSync(snapDir);
    symlinkSync('.', join(snapDir, 'disk.0.snap'));
    await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, join(snapDir, '0'));
    symlinkSync('disk.0.snap/0', disk);
  } else {
    await qemuImg('create', '-q', '-f', 'raw', disk, `${SIZE_MB}M`);
  }
  const request = (id: number) => ({
    diskPath: ds(`${vm}/disk.0`),
    snapId: id,
    format: wireFormat(format),
    snapDir: '',
    backingStyle: BackingStyle.BACKING_STYLE_RELATIVE,
    live: undefined,
  });
  const counts: Record<string, number> = {};
  for (let step = 0; step < STEPS; step++) {
    const ids = [...model.snaps.keys()];
    const roll = rnd.next();
    let op: string;
    let repeat: (() => Promise<unknown>) | undefined;
    if (roll < 0.3 || (ids.length === 0 && roll < 0.5)) {
      op = 'write';
      for (let n = 1 + rnd.int(3); n > 0; n--) {
        const slot = rnd.int(SLOTS);
        const byte = 1 + rnd.int(255);
        await writePattern(disk, format, byte, slot * SLOT, SLOT);
        model.active[slot] = byte;
      }
    } else if (roll < 0.55 || ids.length === 0) {
      op = 'create';
      const id = model.nextId++;
      const run = () => snapshotCreate(agent, request(id), call);
      expect(await run()).toEqual({ created: true });
      repeat = async () => expect(await run()).toEqual({ created: false });
      model.snaps.set(id, [...model.active]);
      model.current = id;
    } else if (roll < 0.7) {
      op = 'revert';
      const id = rnd.pick(ids);
      const run = () => snapshotRevert(agent, request(id), call);
      await run();
      repeat = run;
      model.active = [...(model.snaps.get(id) ?? [])];
      model.current = id;
    } else if (roll < 0.88) {
      op = 'delete';
      const id = rnd.pick(ids);
      const run = () => snapshotDelete(agent, { ...request(id), active: model.current === id }, call);
      expect(await run()).toEqual({ existed: true });
      repeat = async () => expect(await run()).toEqual({ existed: false });
      model.snaps.delete(id);
      if (model.current === id) model.current = undefined;
    } else {
      op = 'convert';
      const id = ids.length > 0 && rnd.next() < 0.5 ? rnd.pick(ids) : undefined;
      const outFormat = rnd.pick(['raw', 'qcow2'] as const);
      const run = () =>
        convertImage(
          agent,
          {
            source: ds(`${vm}/disk.0`),
            destination: ds('1/converted'),
            format: wireFormat(outFormat),
            sourceFormat: wireFormat(format),
            sparse: rnd.next() < 0.8,
            snapshot: id === undefined ? undefined : { snapDir: '', snapId: id },
            imageCurrentState: false,
          },
          call,
        );
      await run();
      const expected = id === undefined ? model.active : (model.snaps.get(id) ?? []);
      await expectContent(
        local('1/converted'),
        outFormat,
        expected,
        `seed ${seed} step ${step}: convert of ${id ?? 'the disk'}`,
      );
      rmSync(local('1/converted'));
    }
    counts[op] = (counts[op] ?? 0) + 1;
    if (repeat && rnd.next() < 0.3) {
      await repeat();
      counts['repeat'] = (counts['repeat'] ?? 0) + 1;
    }
    const label = `seed ${seed} step ${step} (${op})`;
    await expectContent(disk, format, model.active, `${label}: active disk`);
    if (step % FULL_CHECK_EVERY === FULL_CHECK_EVERY - 1 || step === STEPS - 1) {
      await checkEverything(format, disk, snapDir, model, label);
    }
  }
  return counts;
}

/** Every snapshot reads as modelled, every file checks clean, and the snap dir holds nothing else. */
async function checkEverything(
  format: string,
  disk: string,
  snapDir: string,
  model: Model,
  label: string,
): Promise<void> {
  for (const [id, content] of model.snaps) {
    await expectContent(join(snapDir, String(id)), format, content, `${label}: snapshot ${id}`);
    if (format === 'qcow2') await checkClean(join(snapDir, String(id)));
  }
  const numbered = readdirSync(snapDir, { withFileTypes: true })
    .filter((e) => /^\d+$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
  if (format === 'qcow2') {
    const active = Number(readlinkSync(disk).split('/').pop());
    await checkClean(join(snapDir, String(active)));
    // File N holds snapshot N; the active layer is the one file above the snapshots.
    expect(numbered, `${label}: snap dir`).toEqual(
      [...new Set([...model.snaps.keys(), active])].sort((a, b) => a - b),
    );
    expect(active, `${label}: active is the highest file`).toBe(Math.max(...numbered));
  } else {
    expect(numbered, `${label}: snap dir`).toEqual([...model.snaps.keys()].sort((a, b) => a - b));
  }
  const { stdout } = await runTool('find', [snapDir, '-name', '.*tmp*']);
  expect(stdout, `${label}: temporary files left`).toBe('');
}

describe('long random snapshot sequences against a model', () => {
  it.each(['qcow2', 'raw'] as const)(
    `%s: ${STEPS} steps of write/create/revert/delete/convert`,
    async (format) => {
      const counts = await runSequence(format, SEED);
      // The seed must exercise every operation, or the test proves less than it claims.
      for (const op of ['write', 'create', 'revert', 'delete', 'convert', 'repeat'])
        expect(counts[op], op).toBeGreaterThan(0);
    },
  );
});
