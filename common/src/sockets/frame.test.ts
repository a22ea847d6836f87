import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameTooLargeError,
  MAX_FRAME_BYTES,
} from './frame.cjs';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
const texts = (frames: Buffer[]): string[] => frames.map((frame) => frame.toString('utf8'));

/** Cut `stream` at the given offsets and push each piece, collecting every frame returned. */
function decodeInPieces(stream: Buffer, cuts: number[], decoder = new FrameDecoder()): Buffer[] {
  const frames: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    frames.push(...decoder.push(stream.subarray(start, cut)));
    start = cut;
  }
  return frames;
}

describe('encodeFrame', () => {
  it('prefixes the message with its length, big-endian', () => {
    expect([...encodeFrame(bytes('abc'))]).toEqual([0, 0, 0, 3, 0x61, 0x62, 0x63]);
  });

  it('frames an empty message as a bare header', () => {
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0]);
  });

  it('refuses a message above the limit', () => {
    expect(() => encodeFrame(Buffer.alloc(MAX_FRAME_BYTES + 1))).toThrow(FrameTooLargeError);
  });
});

describe('FrameDecoder', () => {
  const one = encodeFrame(bytes('hello'));
  const two = Buffer.concat([encodeFrame(bytes('first')), encodeFrame(bytes('second'))]);
  const withEmpty = Buffer.concat([encodeFrame(bytes('')), encodeFrame(bytes('x')), encodeFrame(bytes(''))]);

  it.each([
    { name: 'a whole frame in one chunk', stream: one, cuts: [], frames: ['hello'] },
    { name: 'a header split in two', stream: one, cuts: [2], frames: ['hello'] },
    {
      name: 'header and body in separate chunks',
      stream: one,
      cuts: [FRAME_HEADER_BYTES],
      frames: ['hello'],
    },
    { name: 'a body split in the middle', stream: one, cuts: [6], frames: ['hello'] },
    { name: 'one byte per chunk', stream: one, cuts: [1, 2, 3, 4, 5, 6, 7, 8], frames: ['hello'] },
    { name: 'two frames in one chunk', stream: two, cuts: [], frames: ['first', 'second'] },
    { name: 'the second frame split across chunks', stream: two, cuts: [11], frames: ['first', 'second'] },
    {
      name: 'a chunk ending one frame and starting the next',
      stream: two,
      cuts: [7, 12],
      frames: ['first', 'second'],
    },
    { name: 'empty frames', stream: withEmpty, cuts: [], frames: ['', 'x', ''] },
    {
      name: 'empty frames, byte by byte',
      stream: withEmpty,
      cuts: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
      frames: ['', 'x', ''],
    },
  ])('decodes $name', ({ stream, cuts, frames }) => {
    expect(texts(decodeInPieces(stream, cuts))).toEqual(frames);
  });

  it('splits a stream at every possible point the same way', () => {
    for (let cut = 0; cut <= two.length; cut++) {
      expect(texts(decodeInPieces(two, [cut]))).toEqual(['first', 'second']);
    }
  });

  it('keeps a partial frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(one.subarray(0, 5))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(5);
    expect(texts(decoder.push(one.subarray(5)))).toEqual(['hello']);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('reassembles a 5 MiB frame sent in 64 KiB chunks', () => {
    const message = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < message.length; i++) message[i] = (i * 31) & 0xff;
    const stream = encodeFrame(message);
    const cuts: number[] = [];
    for (let at = 64 * 1024; at < stream.length; at += 64 * 1024) cuts.push(at);
    const frames = decodeInPieces(stream, cuts);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.equals(message)).toBe(true);
  });

  it.each([
    { name: 'the default limit', decoder: () => new FrameDecoder(), length: MAX_FRAME_BYTES + 1 },
    { name: 'a custom limit', decoder: () => new FrameDecoder(10), length: 11 },
    { name: 'a garbage header', decoder: () => new FrameDecoder(), length: 0xffffffff },
  ])('refuses a frame above $name as soon as the header arrives', ({ decoder, length }) => {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(length, 0);
    expect(() => decoder().push(header)).toThrow(/exceeds the \d+-byte limit/);
  });

  it('accepts a frame exactly at the limit', () => {
    expect(texts(new FrameDecoder(5).push(encodeFrame(bytes('hello'))))).toEqual(['hello']);
  });
});
