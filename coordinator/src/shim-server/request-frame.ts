// The coordinator's half of the shim socket's framing (shim.proto): a 4-byte big-endian length, then
// the message. The format, its limits and the encoder are the shims' own (common/src/sockets/frame.cts,
// CommonJS for the shim runtime). The coordinator only ever reads one frame per connection and
// keeps nothing past it, so it reads with RequestFrameReader rather than the shims' stream decoder.
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameTooLargeError,
  MAX_REQUEST_FRAME_BYTES,
} from '../../../common/src/sockets/frame.cjs';

export { FRAME_HEADER_BYTES, MAX_REQUEST_FRAME_BYTES };

/** Prefix a message with its length; no limit on this side (the shim refuses what it cannot read). */
export function frame(message: Uint8Array): Buffer {
  return encodeFrame(message, Number.POSITIVE_INFINITY);
}

/** Collects a connection's chunks until the first frame is complete. */
export class RequestFrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected: number | undefined;

  constructor(private readonly maxFrameBytes = MAX_REQUEST_FRAME_BYTES) {}

  /** Bytes held so far (at most the header and the frame's announced length). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Add a chunk; returns the frame once complete (bytes after it are dropped). Throws
   * FrameTooLargeError on an oversize header.
   */
  push(chunk: Buffer): Buffer | undefined {
    // Never hold more than header + announced length: what a client sends past its frame is not kept.
    const room =
      this.expected === undefined ? chunk.length : FRAME_HEADER_BYTES + this.expected - this.buffered;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.buffered += kept.length;
    if (this.expected === undefined) {
      if (this.buffered < FRAME_HEADER_BYTES) return undefined;
      this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const length = this.chunks[0]?.readUInt32BE(0) ?? 0;
      if (length > this.maxFrameBytes) {
        this.chunks = [];
        this.buffered = 0;
        throw new FrameTooLargeError(length, this.maxFrameBytes);
      }
      this.expected = length;
      const end = FRAME_HEADER_BYTES + length;
      if (this.buffered > end) {
        this.chunks = [(this.chunks[0] as Buffer).subarray(0, end)];
        this.buffered = end;
      }
    }
    const end = FRAME_HEADER_BYTES + this.expected;
    if (this.buffered < end) return undefined;
    return Buffer.concat(this.chunks, this.buffered).subarray(FRAME_HEADER_BYTES, end);
  }
}
