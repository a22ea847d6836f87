// Fault suite: the destination host's filesystem fills up in the middle of a write. host01's
// datastores sit on a small tmpfs that a ballast file fills until only a little room is left (less
// than the data the call writes), and five actions that write there take turns: a clone between
// hosts (data path), a clone within host01 (the agent's local copy), mkimage with SPARSE=no, a
// standalone qcow2 clone in shared mode and cpds (both through qemu-img convert). Each run: the
// call fails within its deadline in one line naming host01 and the lack of space, the source's
// checksum is unchanged, nothing is at the final path and no temporary is left; once the ballast
// is gone (recovery) the same call succeeds with the right bytes. Prints the tally.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIB, makeImage, writePattern } from '../../cli/src/demo/demo-images.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { runAction, type ActionRun } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { expectOk } from '../support/assertions.js';
import { allocatedBytes, humanLines, imagesIdentical, layout, sha256File } from '../support/files.js';
import { SmallFilesystem } from './support/small-filesystem.js';

/** 25: each action meets each amount of room once. */
const RUNS = Number(process.env['FAULT_RUNS'] ?? 25);
const LOC = ONED_DATASTORE_LOCATION;
const SYS = `${LOC}/0`;
const IMG = `${LOC}/1`;
/** Every call writes this much data on host01; the room left is always less. */
const DATA_MB = 16;
/** Room left on host01 per run, in turn: from almost nothing to almost enough. */
const ROOM_MB = [1, 4, 8, 12, 15];
const FS_MB = 112;
/** A call must end within this (the coordinator's control deadline is 5 s). */
const CALL_DEADLINE_MS = 60_000;

const FRONT_RAW = `${IMG}/fsfullfront00000000000000000000aa`;
const HOST_RAW = `${IMG}/fsfulllocal00000000000000000000bb`;
const HOST_QCOW2 = `${IMG}/fsfullqcow200000000000000000000cc`;
const saved = (vm: number): string => `${IMG}/fsfullsaved${vm}`;
const diskOf = (vm: number): string => `${SYS}/${vm}/disk.0`;

let small: SmallFilesystem | undefined;
let stack: Stack;
const local = (host: string, path: string): string => stack.localPath(host, path);

/** One action that writes DATA_MB on host01: how to set it up, call it, and check its result. */
interface FillCase {
  name: string;
  /** The host and path of the file whose checksum must not change. */
  source: (vm: number) => [string, string];
  prepare: (vm: number) => Promise<void>;
  call: (vm: number) => Promise<ActionRun>;
  /** Final paths (host, path) that must not exist after the failed call. */
  finals: (vm: number) => [string, string][];
  /** After the retry: the result holds the right bytes. */
  verify: (vm: number) => Promise<void>;
}

const tm = (driver: string, action: string, args: string[]): Promise<ActionRun> =>
  runAction(stack.remotesDir, 'tm', driver, action, args);

async function vmWith(vm: number, tmMad: string, disk: Record<string, unknown>, lcmState = 3): Promise<void> {
  await writeVmXml(stack.fixturesDir, {
    id: vm,
    lcmState,
    disks: [{ diskId: 0, imageId: 3, tmMad, size: DATA_MB, originalSize: DATA_MB, ...disk }],
    history: [{ hostname: 'host01', dsId: 0, tmMad }],
  });
}

const cloneCase = (name: string, from: string, source: string): FillCase => ({
  name,
  source: () => [from, source],
  prepare: (vm) => vmWith(vm, 'grpc', { source, format: 'raw' }),
  call: (vm) => tm('grpc', 'clone', [`${from}:${source}`, `host01:${diskOf(vm)}`, `${vm}`, '1']),
  finals: (vm) => [['host01', diskOf(vm)]],
  verify: async (vm) => {
    expect(await sha256File(local('host01', diskOf(vm)))).toBe(await sha256File(local(from, source)));
    expect(layout(local('host01', `${SYS}/${vm}`))).toEqual(['disk.0']);
  },
});

const CASES: FillCase[] = [
  cloneCase('clone between hosts', 'frontend', FRONT_RAW),
  cloneCase('clone within host01 (local copy)', 'host01', HOST_RAW),
  {
    name: 'mkimage SPARSE=no',
    source: () => ['host01', HOST_RAW],
    prepare: (vm) => vmWith(vm, 'grpc', { type: 'fs', format: 'raw', attrs: { SPARSE: 'NO' } }),
    call: (vm) => tm('grpc', 'mkimage', [`${DATA_MB}`, 'raw', `host01:${diskOf(vm)}`, `${vm}`, '0']),
    finals: (vm) => [['host01', diskOf(vm)]],
    verify: async (vm) => {
      expect(allocatedBytes(local('host01', diskOf(vm)))).toBeGreaterThanOrEqual(DATA_MB * MIB);
      expect(layout(local('host01', `${SYS}/${vm}`))).toEqual(['disk.0']);
    },
  },
  {
    name: 'qcow2 standalone clone in shared mode (qemu-img convert)',
    source: () => ['host01', HOST_QCOW2],
    prepare: (vm) =>
      vmWith(vm, 'grpc_qcow2', { source: HOST_QCOW2, format: 'qcow2', attrs: { QCOW2_STANDALONE: 'YES' } }),
    call: (vm) => tm('grpc_qcow2', 'clone', [`frontend:${HOST_QCOW2}`, `host01:${diskOf(vm)}`, `${vm}`, '1']),
    finals: (vm) => [['host01', diskOf(vm)]],
    verify: async (vm) => {
      const disk = local('host01', diskOf(vm));
      expect(await imagesIdentical(disk, 'qcow2', local('host01', HOST_QCOW2), 'qcow2')).toBe(true);
    },
  },
  {
    name: 'cpds (flattened on host01 with qemu-img convert, then sent)',
    source: (vm) => ['host01', diskOf(vm)],
    prepare: async (vm) => {
      await vmWith(vm, 'grpc', { source: FRONT_RAW, format: 'raw' }, 51);
      await makeImage(local('host01', diskOf(vm)), 'raw', DATA_MB, 0x61);
      await writePattern(local('host01', diskOf(vm)), 'raw', 0x62, MIB, (DATA_MB - 1) * MIB);
    },
    call: (vm) => tm('grpc', 'cpds', [`host01:${diskOf(vm)}`, saved(vm), '-1', `${vm}`, '1']),
    finals: (vm) => [['frontend', saved(vm)]],
    verify: async (vm) => {
      expect(await sha256File(local('frontend', saved(vm)))).toBe(
        await sha256File(local('host01', diskOf(vm))),
      );
      expect(layout(local('host01', `${SYS}/${vm}`))).toEqual(['disk.0']);
    },
  },
];

/** Names in host01's system and image datastores and the front-end's image datastore that are not expected. */
function strays(vm: number): string[] {
  const known = new Set([FRONT_RAW, HOST_RAW, HOST_QCOW2].map((p) => p.slice(IMG.length + 1)));
  return [
    ...layout(local('host01', `${SYS}/${vm}`)).filter((n) => n !== 'disk.0'),
    ...layout(local('host01', IMG)).filter((n) => !known.has(n)),
    ...layout(local('frontend', IMG)).filter((n) => !known.has(n)),
  ];
}

async function withDeadline(what: string, call: Promise<ActionRun>): Promise<ActionRun> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not end within ${CALL_DEADLINE_MS} ms`)),
      CALL_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([call, late]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  small = await SmallFilesystem.mount(FS_MB, 'one-storage-fs-full-');
  stack = await Stack.start({
    hostDirs: { host01: join(small.dir, 'datastores') },
    deadlines: { controlMs: 5_000 },
  });
  for (const [host, path, format] of [
    ['frontend', FRONT_RAW, 'raw'],
    ['host01', HOST_RAW, 'raw'],
    ['host01', HOST_QCOW2, 'qcow2'],
  ] as const) {
    await makeImage(local(host, path), format, DATA_MB, 0x41);
    await writePattern(local(host, path), format, 0x42, MIB, (DATA_MB - 1) * MIB);
  }
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await small?.remove();
});

describe('destination filesystem full mid-write', () => {
  it(`${RUNS} runs over five actions and five amounts of room: one line, source intact, nothing half-written, retry works`, async () => {
    const fs = small as SmallFilesystem;
    const tally = { runs: 0, survived: 0, bytesLost: 0 };
    const failures: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const vm = 200 + i;
      const c = CASES[i % CASES.length] as FillCase;
      const roomMb = ROOM_MB[(i + Math.floor(i / CASES.length)) % ROOM_MB.length] as number;
      await c.prepare(vm);
      const [srcHost, srcPath] = c.source(vm);
      const before = await sha256File(local(srcHost, srcPath));
      fs.fillLeaving(roomMb * MIB);
      tally.runs++;
      const what = `run ${i} (${c.name}, ${roomMb} MiB left)`;
      const first = await withDeadline(what, c.call(vm));
      fs.makeRoom();
      expect(first.code, `${what}: succeeded though it could not fit`).not.toBe(0);
      const lines = humanLines(first.stderr);
      expect(lines, `${what}: ${first.stderr}`).toHaveLength(1);
      expect(lines[0], what).toMatch(/host01.*no space left/i);
      // It names the datastore's path as oned knows it, never the host's real one.
      expect(lines[0], what).not.toContain(fs.dir);
      failures.push(`${what}: ${lines[0] ?? ''}`);
      const after = await sha256File(local(srcHost, srcPath));
      if (after !== before) tally.bytesLost += DATA_MB * MIB;
      expect(after, what).toBe(before);
      for (const [host, path] of c.finals(vm))
        expect(existsSync(local(host, path)), `${what}: ${path}`).toBe(false);
      expect(strays(vm), what).toEqual([]);
      expectOk(await withDeadline(`${what}, retried`, c.call(vm)));
      await c.verify(vm);
      tally.survived++;
      // The next run starts from the same free space.
      await rm(local('host01', `${SYS}/${vm}`), { recursive: true, force: true });
      await rm(local('frontend', saved(vm)), { force: true });
    }
    console.log(failures.join('\n'));
    console.log(
      `destination filesystem full mid-write: ${tally.runs} runs, ${tally.survived} survived, ${tally.bytesLost} bytes lost`,
    );
    expect(tally).toEqual({ runs: RUNS, survived: RUNS, bytesLost: 0 });
  }, 300_000);
});
