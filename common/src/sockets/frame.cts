// Length-delimited frames for the shim socket (shim.proto): a 4-byte big-endian length, then that
// many bytes of an encoded protobuf message. Shared by the shims and the coordinator's shim server:
// CommonJS because the shim runtime is (shims/src/run-shim.cts), and importing nothing but the units,
// because every shim start pays for what it loads. The coordinator imports it as `frame.cjs` like any CommonJS
// module; the tests compile it from source (vitest.config.ts transforms .cts).
import { MIB } from '../units.cjs';

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Largest request a shim sends, and the coordinator accepts. A request carries oned's argv and
 * stdin: kilobytes (a DS action's base64 XML; a backup hook's VM XML is the largest, tens of KiB
 * with many disks and snapshots). A request near this is a bug or a hostile client, and the
 * coordinator refuses larger ones at their header, before anything is buffered (docs/security.md).
 */
export const MAX_REQUEST_FRAME_BYTES = 4 * MIB;

/**
 * Largest frame a shim reads: the coordinator's events (a monitor action's output for a datastore
 * with many VMs is the largest). Anything near this is a bug, and refusing it keeps a bad length
 * from making a shim buffer gigabytes.
 */
export const MAX_FRAME_BYTES = 64 * MIB;

/** Prefix a message with its length; a message above `maxFrameBytes` is refused. */
export function encodeFrame(message: Uint8Array, maxFrameBytes = MAX_FRAME_BYTES): Buffer {
  if (message.length > maxFrameBytes) throw new FrameTooLargeError(message.length, maxFrameBytes);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  frame.writeUInt32BE(message.length, 0);
  frame.set(message, FRAME_HEADER_BYTES);
  return frame;
}

/** A frame announced a length above the limit; the stream cannot be trusted after it. */
export class FrameTooLargeError extends Error {
  constructor(
    readonly frameBytes: number,
    readonly maxFrameBytes: number,
  ) {
    super(`frame of ${frameBytes} bytes exceeds the ${maxFrameBytes}-byte limit`);
    this.name = 'FrameTooLargeError';
  }
}

/**
 * Splits a byte stream into frames. Feed it every chunk a socket delivers; it returns the frames each
 * chunk completes (none, one or several) and keeps any partial frame for the next chunk. Chunks are
 * held as a list and joined once per completed frame, so a large frame arriving in many small chunks
 * costs one copy, not one per chunk.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being assembled, once its header has arrived. */
  private expected: number | undefined;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  /** Bytes received but not yet returned as a frame (non-zero at end of stream = truncated frame). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Add a chunk; returns the frames it completes. Throws FrameTooLargeError on an oversize header. */
  push(chunk: Uint8Array): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected === undefined) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const length = this.head(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
        this.expected = length;
      }
      const total = FRAME_HEADER_BYTES + this.expected;
      if (this.buffered < total) break;
      const all = this.head(this.buffered);
      frames.push(all.subarray(FRAME_HEADER_BYTES, total));
      const rest = all.subarray(total);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = undefined;
    }
    return frames;
  }

  /** The first `bytes` buffered bytes as one buffer, joining chunks only when they are split. */
  private head(bytes: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= bytes) return first.subarray(0, bytes);
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined.subarray(0, bytes);
  }
}
