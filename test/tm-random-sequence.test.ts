// A long seeded random sequence of snapshot create / revert / delete, cpds and resize on one qcow2
// disk, through the shims, checked after every step against a model of what the disk and each
// snapshot must hold.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../cli/src/demo/demo-images.js';
import { runAction, type ActionRun } from '../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../cli/src/demo/stack.js';
import { runTool } from '../common/src/tools/run-tool.js';
import { writeVmXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { imageInfo } from './support/files.js';
import { expectOk, holdsPattern } from './support/assertions.js';

const VM = 61;
const VM_DIR = `${ONED_DATASTORE_LOCATION}/0/${VM}`;
const DISK = `${VM_DIR}/disk.0`;
const IMAGE = `${ONED_DATASTORE_LOCATION}/1/random00000000000000000000000000`;
const STEPS = 30;
// ONE_STORAGE_SEED replays or explores other sequences.
const SEED = Number(process.env['ONE_STORAGE_SEED'] ?? 20261126);
const LCM_POWEROFF_SNAPSHOT = 51;

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let stack: Stack;
const tm = (action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', 'grpc', action, args);

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
  await makeImage(stack.localPath('frontend', IMAGE), 'qcow2', 16, 0x01);
});

afterAll(async () => {
  await stack?.stop();
});

it(`${STEPS} random steps keep the disk and every snapshot as the model says (seed ${SEED})`, async () => {
  const rand = prng(SEED);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const model = {
    current: 0x01,
    sizeMb: 16,
    snaps: new Map<number, number>(),
    active: -1,
    nextId: 0,
    nextPattern: 0x10,
  };
  const writeFixture = (): Promise<string> =>
    writeVmXml(stack.fixturesDir, {
      id: VM,
      lcmState: LCM_POWEROFF_SNAPSHOT,
      disks: [
        {
          diskId: 0,
          imageId: 0,
          source: IMAGE,
          format: 'qcow2',
          tmMad: 'grpc',
          size: model.sizeMb,
          originalSize: 16,
        },
      ],
      snapshots: [
        { diskId: 0, snapshots: [...model.snaps.keys()].map((id) => ({ id, active: id === model.active })) },
      ],
      history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
    });
  await writeFixture();
  expectOk(await tm('clone', [`frontend:${IMAGE}`, `host01:${DISK}`, `${VM}`, '1']));
  const disk = stack.localPath('host01', DISK);
  const log: string[] = [];

  for (let step = 0; step < STEPS; step++) {
    const ids = [...model.snaps.keys()];
    const ops = ['write', 'create', 'create', ...(ids.length ? ['revert', 'delete', 'cpds'] : []), 'resize'];
    const op = pick(ops);
    await writeFixture();
    if (op === 'write') {
      model.current = model.nextPattern++;
      await writePattern(disk, 'qcow2', model.current, 0, MIB);
    } else if (op === 'create') {
      // ids grow with gaps, several digits included, as oned's NEXT_SNAPSHOT may skip
      const id = model.nextId;
      model.nextId += 1 + Math.floor(rand() * 9);
      expectOk(await tm('snap_create', [`host01:${DISK}`, `${id}`, `${VM}`, '1']));
      model.snaps.set(id, model.current);
      model.active = id;
    } else if (op === 'revert') {
      const id = pick(ids);
      expectOk(await tm('snap_revert', [`host01:${DISK}`, `${id}`, `${VM}`, '1']));
      model.current = model.snaps.get(id) as number;
      model.active = id;
    } else if (op === 'delete') {
      const id = pick(ids);
      expectOk(await tm('snap_delete', [`host01:${DISK}`, `${id}`, `${VM}`, '1']));
      model.snaps.delete(id);
      if (model.active === id) model.active = -1;
    } else if (op === 'cpds') {
      const id = pick([...ids, -1]);
      const saved = `${ONED_DATASTORE_LOCATION}/1/saved${step}`;
      expectOk(await tm('cpds', [`host01:${DISK}`, saved, `${id}`, `${VM}`, '1']));
      const want = id === -1 ? model.current : (model.snaps.get(id) as number);
      expect(
        await holdsPattern(stack.localPath('frontend', saved), want),
        `step ${step}: cpds ${id}\n${log.join('\n')}`,
      ).toBe(true);
    } else {
      model.sizeMb += 1;
      await writeFixture();
      expectOk(await tm('resize', [`host01:${DISK}`, `${model.sizeMb}`, `${VM}`, '1']));
      expect((await imageInfo(disk, 'qcow2'))['virtual-size']).toBe(model.sizeMb * MIB);
    }
    log.push(
      `${step}: ${op} → current 0x${model.current.toString(16)}, snaps ${JSON.stringify([...model.snaps])}`,
    );
    expect(await holdsPattern(disk, model.current), `after step ${step} (${op})\n${log.join('\n')}`).toBe(
      true,
    );
    await runTool('qemu-img', ['check', '-q', disk]);
  }

  expect(log.filter((l) => / (revert|delete) /.test(l)).length, log.join('\n')).toBeGreaterThan(2);
  // Finally every surviving snapshot, read back through cpds.
  for (const [id, pattern] of model.snaps) {
    const saved = `${ONED_DATASTORE_LOCATION}/1/final${id}`;
    expectOk(await tm('cpds', [`host01:${DISK}`, saved, `${id}`, `${VM}`, '1']));
    expect(
      await holdsPattern(stack.localPath('frontend', saved), pattern),
      `snapshot ${id}\n${log.join('\n')}`,
    ).toBe(true);
  }
});
