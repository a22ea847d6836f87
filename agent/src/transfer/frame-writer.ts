import type { Socket } from 'node:net';
import { FrameType, HEADER_BYTES, frameHeader } from './wire.js';
import { MIB } from '../../../common/src/units.js';

/**
 * Bytes we let pile up in the socket's user-space queue before waiting for 'drain'. Large enough
 * that the kernel always has the next chunk while we read and hash the one after it, small enough
 * to bound memory per transfer.
 */
const MAX_QUEUED_BYTES = 8 * MIB;

/** Writes frames to a socket (plain or TLS), honouring backpressure. */
export class FrameWriter {
  constructor(private readonly socket: Socket) {}

  /** A whole control frame (from controlFrame()). */
  async control(frame: Buffer): Promise<void> {
    this.ensureOpen();
    if (!this.socket.write(frame)) await this.drained();
  }

  /**
   * A DATA frame: `frame` holds HEADER_BYTES of room for the header, then the payload. The header
   * is written into that room so the frame leaves as one buffer, referenced, not copied, until
   * `done` runs (after the socket has consumed it), when the caller may recycle it.
   */
  async data(frame: Buffer, done: () => void): Promise<void> {
    this.ensureOpen();
    frameHeader(FrameType.DATA, frame.length - HEADER_BYTES, frame);
    this.socket.write(frame, () => done());
    if (this.socket.writableLength > MAX_QUEUED_BYTES) await this.drained();
  }

  private ensureOpen(): void {
    if (this.socket.destroyed || this.socket.writableEnded)
      throw new Error('connection closed by the receiver');
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => finish();
      const onClose = (): void => finish(new Error('connection closed by the receiver'));
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }
}
