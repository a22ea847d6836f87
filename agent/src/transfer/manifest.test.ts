import { describe, expect, it } from 'vitest';
import { manifestProblem } from './manifest.js';
import { mergeDataRuns } from '../qemu/image-map.js';
import { FrameReader, FrameType, controlFrame, frameHeader } from './wire.js';

const root = { path: '', kind: 'dir', mode: 0o755, size: 0, mtimeMs: 0 };
const file = (path: string, extents: [number, number][] = [], size = 100) => ({
  path,
  kind: 'file',
  mode: 0o644,
  size,
  mtimeMs: 0,
  extents,
});

describe('manifestProblem', () => {
  it.each([
    [
      'a sound tree',
      [
        root,
        { ...root, path: 'd' },
        file('d/f', [[0, 10]]),
        { ...root, kind: 'symlink', path: 'd/self', link: '.' },
        { ...root, kind: 'symlink', path: 'l', link: 'd/self/f' },
      ],
      undefined,
    ],
    // The receiver does not trust the sender to have kept links inside the tree.
    ['an absolute symlink', [root, { ...root, kind: 'symlink', path: 'l', link: '/etc' }], /absolute/],
    ['a symlink out of the tree', [root, { ...root, kind: 'symlink', path: 'l', link: '../x' }], /leads out/],
    [
      'a symlink out of the tree through another link',
      [
        root,
        { ...root, path: 'd' },
        { ...root, kind: 'symlink', path: 'd/up', link: '..' },
        { ...root, kind: 'symlink', path: 'l', link: 'd/up/../x' },
      ],
      /leads out/,
    ],
    [
      'a symlink loop',
      [
        root,
        { ...root, kind: 'symlink', path: 'l', link: 'm/x' },
        { ...root, kind: 'symlink', path: 'm', link: 'l' },
      ],
      /loops/,
    ],
    ['a symlink as the root', [{ ...root, kind: 'symlink', link: 'x' }], /the root is a symlink/],
    ['a ".." component', [root, file('../x')], /unsafe path/],
    ['an absolute path', [root, file('/etc/passwd')], /unsafe path/],
    ['an empty component', [root, file('a//b')], /unsafe path/],
    [
      'a path through a symlink',
      [root, { ...root, kind: 'symlink', path: 'l', link: '/etc' }, file('l/passwd')],
      /not a directory/,
    ],
    ['a child before its directory', [root, file('d/f'), { ...root, path: 'd' }], /not a directory/],
    [
      'overlapping extents',
      [
        root,
        file('f', [
          [0, 10],
          [5, 10],
        ]),
      ],
      /overlap/,
    ],
    ['an extent past the end', [root, file('f', [[90, 20]])], /overlap or pass/],
    ['a setuid mode', [root, { ...file('f'), mode: 0o4755 }], /bad mode/],
    ['a duplicate', [root, file('f'), file('f')], /duplicate/],
    // Found by test/fuzz/data-path-frames: extents that are not a list, on a directory, reached
    // the byte count and failed the Receive as INTERNAL ("extents is not iterable").
    ['extents on a directory', [{ ...root, extents: {} }], /extents on a dir/],
  ])('%s', (_name, entries, expected) => {
    const problem = manifestProblem({ version: 1, entries });
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});

describe('mergeDataRuns', () => {
  it('merges adjacent data runs and clamps to the file size', () => {
    const runs = mergeDataRuns(
      [
        { start: 0, length: 512, data: true },
        { start: 512, length: 512, data: true },
        { start: 1024, length: 4096, data: false },
        { start: 5120, length: 1024, data: true },
      ],
      5500,
    );
    expect(runs).toEqual([
      [0, 1024],
      [5120, 380],
    ]);
  });
});

describe('FrameReader', () => {
  it('reassembles frames split at any byte, passing DATA through in order', () => {
    const data = Buffer.from('0123456789abcdef');
    const stream = Buffer.concat([
      controlFrame(FrameType.MANIFEST, { version: 1 }),
      frameHeader(FrameType.DATA, data.length),
      data,
      controlFrame(FrameType.END, Buffer.alloc(32, 1)),
    ]);
    for (const step of [1, 2, 3, 7, stream.length]) {
      const seen: string[] = [];
      const got: Buffer[] = [];
      const reader = new FrameReader({
        control: (t) => seen.push(String.fromCharCode(t)),
        data: (b) => got.push(b),
      });
      for (let i = 0; i < stream.length; i += step) reader.push(stream.subarray(i, i + step));
      expect(seen).toEqual(['M', 'E']);
      expect(Buffer.concat(got).equals(data)).toBe(true);
      expect(reader.idle).toBe(true);
    }
  });

  it('refuses unknown types and oversized control frames', () => {
    const reader = new FrameReader({ control: () => undefined, data: () => undefined }, 10);
    expect(() => reader.push(Buffer.from([0x00, 0, 0, 0, 0]))).toThrow(/unknown frame type/);
    const r2 = new FrameReader({ control: () => undefined, data: () => undefined }, 10);
    expect(() => r2.push(frameHeader(FrameType.MANIFEST, 11))).toThrow(/exceeds/);
  });
});
