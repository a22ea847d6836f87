import { describe, expect, it } from 'vitest';
import { dirtyExtents, mergeExtents, parseMap, splitExtents, unallocatedExtents } from './image-map.js';

describe('image map helpers', () => {
  const map = parseMap(
    JSON.stringify([
      { start: 0, length: 100, present: true, zero: false, data: true },
      { start: 100, length: 50, present: false, zero: false, data: false },
      { start: 150, length: 50, present: false, zero: true, data: false },
      { start: 200, length: 10, present: true, zero: true, data: false },
    ]),
    'map',
  );
  it('finds dirty ranges ("data": false, inverted) and joins neighbours', () => {
    expect(dirtyExtents(map)).toEqual([{ start: 100, length: 110 }]);
  });
  it('finds unallocated ranges (present: false)', () => {
    expect(unallocatedExtents(map)).toEqual([{ start: 100, length: 100 }]);
  });
  it('splits long extents', () => {
    expect(splitExtents([{ start: 10, length: 25 }], 10)).toEqual([
      { start: 10, length: 10 },
      { start: 20, length: 10 },
      { start: 30, length: 5 },
    ]);
  });
  it('keeps separate extents apart', () => {
    expect(
      mergeExtents([
        { start: 0, length: 1 },
        { start: 2, length: 1 },
      ]),
    ).toHaveLength(2);
  });
  it('refuses output that is not JSON, naming what', () => {
    expect(() => parseMap('nope', 'map of disk.0')).toThrow(/map of disk.0: qemu-img map printed/);
  });
});
