// The coordinator's half of the shim socket's framing (shim.proto): a 4-byte big-endian length, then
// the message. The shims' own implementation (shims/src/frame.cts) cannot be imported from here: the
// shim runtime is CommonJS for start-up speed, and the test runner (vite) does not compile .cts
// sources, so a coordinator importing it could not be tested from source. The two are held together by
// the real-process tests in shims/src/run-shim.test.ts. The coordinator only ever reads one frame per
// connection, so this side needs no general stream decoder.
import { MIB } from '../../../common/src/units.js';

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;
/**
 * Largest request accepted, the same as the shims' MAX_REQUEST_FRAME_BYTES. A request carries oned's
 * argv and stdin: kilobytes (a DS action's base64 XML; a backup hook's VM XML is the largest, tens of
 * KiB with many disks and snapshots). A larger announced length is a bug or a hostile client and is
 * refused at its header, before anything is buffered (docs/security.md).
 */
export const MAX_REQUEST_FRAME_BYTES = 4 * MIB;

/** A request announced a length above the limit; nothing more is read from that connection. */
export class RequestTooLargeError extends Error {
  constructor(
    readonly frameBytes: number,
    readonly maxFrameBytes: number,
  ) {
    super(`request of ${frameBytes} bytes exceeds the ${maxFrameBytes}-byte limit`);
    this.name = 'RequestTooLargeError';
  }
}

/** Prefix a message with its length. */
export function frame(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  framed.writeUInt32BE(message.length, 0);
  framed.set(message, FRAME_HEADER_BYTES);
  return framed;
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
   * RequestTooLargeError on an oversize header.
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
        throw new RequestTooLargeError(length, this.maxFrameBytes);
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
