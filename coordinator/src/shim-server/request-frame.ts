// The coordinator's half of the shim socket's framing (shim.proto): a 4-byte big-endian length, then
// the message. The shims' own implementation (shims/src/frame.cts) cannot be imported from here: the
// shim runtime is CommonJS for start-up speed, and the test runner (vite) does not compile .cts
// sources, so a coordinator importing it could not be tested from source. The two are held together by
// the real-process tests in shims/src/run-shim.test.ts. The coordinator only ever reads one frame per
// connection, so this side needs no general stream decoder.

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;
/** Largest request accepted (same limit as the shims'): a bad length must not make us buffer gigabytes. */
export const MAX_REQUEST_FRAME_BYTES = 64 * 1024 * 1024;

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

  /** Add a chunk; returns the frame once complete (bytes after it are ignored). Throws on an oversize header. */
  push(chunk: Buffer): Buffer | undefined {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.expected === undefined) {
      if (this.buffered < FRAME_HEADER_BYTES) return undefined;
      this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const length = this.chunks[0]?.readUInt32BE(0) ?? 0;
      if (length > this.maxFrameBytes) {
        throw new Error(`frame of ${length} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
      }
      this.expected = length;
    }
    const end = FRAME_HEADER_BYTES + this.expected;
    if (this.buffered < end) return undefined;
    return Buffer.concat(this.chunks, this.buffered).subarray(FRAME_HEADER_BYTES, end);
  }
}
