import { describe, expect, it } from 'vitest';
import { type ByteRange, byteRange } from './byte-range.js';

const part = (start: number, end: number): ByteRange => ({ kind: 'part', start, end });
const WHOLE: ByteRange = { kind: 'whole' };
const UNSATISFIABLE: ByteRange = { kind: 'unsatisfiable' };

describe('byteRange', () => {
  it.each<[string | undefined, number, ByteRange]>([
    [undefined, 100, WHOLE],
    ['bytes=0-9', 100, part(0, 9)],
    ['bytes=10-', 100, part(10, 99)],
    ['bytes=90-200', 100, part(90, 99)],
    ['bytes=-10', 100, part(90, 99)],
    ['bytes=-500', 100, part(0, 99)],
    ['bytes=99-99', 100, part(99, 99)],
    [' bytes = 0 - 0 ', 100, part(0, 0)],
    ['bytes=100-', 100, UNSATISFIABLE],
    ['bytes=100-200', 100, UNSATISFIABLE],
    ['bytes=-0', 100, UNSATISFIABLE],
    ['bytes=0-', 0, UNSATISFIABLE],
    ['bytes=-1', 0, UNSATISFIABLE],
    ['bytes=0-9,20-29', 100, WHOLE],
    ['bytes=9-0', 100, WHOLE],
    ['items=0-9', 100, WHOLE],
    ['bytes=a-b', 100, WHOLE],
    ['bytes=-', 100, WHOLE],
    ['bytes=99999999999999999-', 100, WHOLE],
  ])('%j of %d bytes', (header, size, expected) => {
    expect(byteRange(header, size)).toEqual(expected);
  });
});
