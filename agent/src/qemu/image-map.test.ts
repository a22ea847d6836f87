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
    expect(dirtyExtents(map)).toEqual([[100, 110]]);
  });
  it('finds unallocated ranges (present: false)', () => {
    expect(unallocatedExtents(map)).toEqual([[100, 100]]);
  });
  it('splits long extents', () => {
    expect(splitExtents([[10, 25]], 10)).toEqual([
      [10, 10],
      [20, 10],
      [30, 5],
    ]);
  });
  it('keeps separate extents apart', () => {
    expect(
      mergeExtents([
        [0, 1],
        [2, 1],
      ]),
    ).toHaveLength(2);
  });
  it('refuses output that is not JSON, naming what', () => {
    expect(() => parseMap('nope', 'map of disk.0')).toThrow(/map of disk.0: qemu-img map printed/);
  });
  it('refuses entries without their fields', () => {
    expect(() => parseMap('[{"start": 0, "length": "x", "zero": false, "data": true}]', 'map')).toThrow(
      /map: qemu-img map printed an entry without/,
    );
  });
});
