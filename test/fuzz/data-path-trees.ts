// What a sender sends, generated: a small file or directory tree (files with data runs and holes,
// nested directories, symlinks that stay inside the tree), its manifest, and manifest mutations a
// broken or hostile sender could make (paths that climb out, absolute or NUL-carrying names, huge
// names, many entries, links out of the tree, extents past the size or overlapping, bad fields).
import fc from 'fast-check';

export type Extent = [number, number];

export interface Entry {
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  mode: number;
  size: number;
  mtimeMs: number;
  link?: string;
  extents?: Extent[];
}

export interface TreeFile {
  path: string;
  size: number;
  extents: Extent[];
  /** Seeds the data stream (dataOf): a counterexample prints a number, not the bytes. */
  seed: number;
}

export interface Tree {
  entries: Entry[];
  files: TreeFile[];
}

const MTIME = 1_700_000_000_000;

/** Deterministic bytes (xorshift32), so a seed reproduces the same data without storing it. */
function bytesOf(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const fileShape = fc.record({
  size: fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 16_384 }) },
    { weight: 1, arbitrary: fc.constant(1 << 20) },
  ),
  cuts: fc.array(
    fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000),
    { maxLength: 6 },
  ),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
});

function makeFile(path: string, shape: { size: number; cuts: number[]; seed: number }): TreeFile {
  const points = [...new Set(shape.cuts.map((c) => Math.floor(c * shape.size)))].sort((a, b) => a - b);
  // No cut: the whole file is one extent (a file without holes).
  const bounds = points.length < 2 ? [0, shape.size] : points;
  const extents: Extent[] = [];
  for (let i = 0; i + 1 < bounds.length; i += 2) {
    const [a, b] = [bounds[i] as number, bounds[i + 1] as number];
    if (b > a) extents.push([a, b - a]);
  }
  return { path, size: shape.size, extents, seed: shape.seed };
}

const streams = new WeakMap<TreeFile, Buffer>();

/** The data stream of `f`: the bytes of every extent, back to back. */
export function dataOf(f: TreeFile): Buffer {
  let data = streams.get(f);
  if (!data) {
    data = bytesOf(
      f.seed,
      f.extents.reduce((n, [, l]) => n + l, 0),
    );
    streams.set(f, data);
  }
  return data;
}

const NAMES = ['disk.0', 'disk.1', 'deployment.0', 'a', 'b'];

/** A regular file alone, or a VM-directory-like tree. */
export const trees: fc.Arbitrary<Tree> = fc.oneof(
  fileShape.map((shape): Tree => {
    const f = makeFile('', shape);
    return {
      entries: [{ path: '', kind: 'file', mode: 0o644, size: f.size, mtimeMs: MTIME, extents: f.extents }],
      files: [f],
    };
  }),
  fc
    .record({
      top: fc.uniqueArray(fc.constantFrom(...NAMES), { maxLength: 3 }),
      sub: fc.boolean(),
      inSub: fc.array(fileShape, { maxLength: 2 }),
      shapes: fc.array(fileShape, { minLength: 3, maxLength: 3 }),
      links: fc.boolean(),
    })
    .map(({ top, sub, inSub, shapes, links }): Tree => {
      const entries: Entry[] = [{ path: '', kind: 'dir', mode: 0o755, size: 0, mtimeMs: MTIME }];
      const files: TreeFile[] = [];
      const addFile = (path: string, shape: (typeof shapes)[number]): void => {
        const f = makeFile(path, shape);
        files.push(f);
        entries.push({ path, kind: 'file', mode: 0o600, size: f.size, mtimeMs: MTIME, extents: f.extents });
      };
      top.sort().forEach((name, i) => addFile(name, shapes[i] as (typeof shapes)[number]));
      if (sub) {
        entries.push({ path: 'snap', kind: 'dir', mode: 0o755, size: 0, mtimeMs: MTIME });
        inSub.forEach((shape, i) => addFile(`snap/${i}`, shape));
        if (links)
          entries.push({ path: 'snap/up', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: MTIME, link: '.' });
      }
      if (links && top[0])
        entries.push({
          path: 'current',
          kind: 'symlink',
          mode: 0o777,
          size: 0,
          mtimeMs: MTIME,
          link: top[0],
        });
      return { entries, files };
    }),
);

/** A manifest change; `text` replaces the manifest's JSON outright. */
export type ManifestMutation =
  | { k: 'none' }
  | { k: 'path'; at: number; path: string }
  | { k: 'field'; at: number; field: keyof Entry | 'extra'; value: unknown }
  | { k: 'addEntry'; entry: Record<string, unknown> }
  | { k: 'manyEntries'; count: number }
  | { k: 'top'; value: unknown }
  | { k: 'text'; text: string };

const HOSTILE_PATHS = [
  '..',
  '../x',
  '../../canary/victim',
  '/tmp/x',
  '/etc/passwd',
  'a/../../x',
  '.',
  'a//b',
  'a/',
  'x\u0000y',
  'a'.repeat(300),
  `${'a/'.repeat(3000)}a`,
  'b'.repeat(5000),
  'escape/victim',
  'current/x',
];

const HOSTILE_VALUES = [-1, 2 ** 53, 2 ** 50, 1.5, '7', null, [], {}, 0o4755, 0o7777, 2 ** 53 - 1];

export const manifestMutations: fc.Arbitrary<ManifestMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ k: 'none' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('path' as const),
      at: fc.nat(),
      path: fc.oneof(fc.constantFrom(...HOSTILE_PATHS), fc.string({ unit: 'binary', maxLength: 12 })),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('field' as const),
      at: fc.nat(),
      field: fc.constantFrom('kind', 'mode', 'size', 'mtimeMs', 'link', 'extents', 'extra'),
      value: fc.oneof(
        fc.constantFrom(...HOSTILE_VALUES),
        fc.constantFrom('fifo', 'symlink', 'dir', 'file', '../..', '/etc', 'x\u0000'),
        fc.constantFrom<unknown>(
          [[0, 1]],
          [[0, 0]],
          [[-1, 5]],
          [
            [5, 10],
            [0, 3],
          ],
          [
            [0, 10],
            [5, 10],
          ],
          [[0, 2 ** 53]],
          [[2 ** 50, 1]],
          [[0, 1, 2]],
          [['0', '1']],
          'x',
        ),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('addEntry' as const),
      entry: fc.constantFrom<Record<string, unknown>>(
        { path: 'out', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: 0, link: '../../canary' },
        { path: 'abs', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: 0, link: '/tmp' },
        { path: 'loop', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: 0, link: 'loop/../..' },
        { path: 'lnk', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: 0, link: '.' },
        { path: 'nul', kind: 'symlink', mode: 0o777, size: 0, mtimeMs: 0, link: 'a\u0000b' },
        { path: '', kind: 'dir', mode: 0o755, size: 0, mtimeMs: 0 },
        { path: 'x', kind: 'file', mode: 0o600, size: 4, mtimeMs: 0 },
        { path: 'y', kind: 'file', mode: 0o600, size: 2 ** 50, mtimeMs: 0, extents: [] },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('manyEntries' as const), count: fc.constantFrom(500, 100_001) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('top' as const),
      value: fc.constantFrom<unknown>(
        null,
        [],
        'm',
        { version: 2 },
        { version: 1 },
        { version: 1, entries: {} },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('text' as const),
      text: fc.oneof(
        fc.constantFrom('', '{', 'null', '[]', '{"version":1,"entries":[', '\u0000'),
        fc.string({ maxLength: 40 }),
      ),
    }),
  },
);

/** The manifest JSON a sender would send for `tree`, changed by `m`, and whether it differs. */
export function manifestText(tree: Tree, m: ManifestMutation): { text: string; changed: boolean } {
  const honest = JSON.stringify({ version: 1, entries: tree.entries });
  const entries: Record<string, unknown>[] = tree.entries.map((e) => ({ ...e }));
  const pick = (at: number): Record<string, unknown> =>
    entries[at % entries.length] as Record<string, unknown>;
  let top: unknown = { version: 1, entries };
  switch (m.k) {
    case 'none':
      break;
    case 'path':
      pick(m.at).path = m.path;
      break;
    case 'field':
      pick(m.at)[m.field] = m.value;
      break;
    case 'addEntry':
      entries.push(m.entry);
      break;
    case 'manyEntries':
      if (tree.entries[0]?.kind !== 'dir')
        entries[0] = { path: '', kind: 'dir', mode: 0o755, size: 0, mtimeMs: 0 };
      for (let i = 0; i < m.count; i++)
        entries.push({ path: `d${i}`, kind: 'dir', mode: 0o755, size: 0, mtimeMs: 0 });
      break;
    case 'top':
      top = m.value;
      break;
    case 'text':
      return { text: m.text, changed: m.text !== honest };
  }
  const text = JSON.stringify(top);
  return { text, changed: text !== honest };
}
