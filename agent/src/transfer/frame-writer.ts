import type { Socket } from 'node:net';
import { FrameType, frameHeader } from './wire.js';

/**
 * Bytes we let pile up in the socket's user-space queue before waiting for 'drain'. Large enough
 * that the kernel always has the next chunk while we read and hash the one after it, small enough
 * to bound memory per transfer.
 */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** Writes frames to a socket (plain or TLS), honouring backpressure. */
export class FrameWriter {
  constructor(private readonly socket: Socket) {}

  /** A whole control frame (from controlFrame()). */
  async control(frame: Buffer): Promise<void> {
    this.ensureOpen();
    if (!this.socket.write(frame)) await this.drained();
  }

  /**
   * A DATA frame carrying `bytes`. The caller's buffer is referenced, not copied, until `done`
   * runs (after the socket has consumed it), so the caller can recycle it then. Header and payload
   * go out in one writev thanks to cork/uncork.
   */
  async data(bytes: Buffer, done: () => void): Promise<void> {
    this.ensureOpen();
    this.socket.cork();
    this.socket.write(frameHeader(FrameType.DATA, bytes.length));
    this.socket.write(bytes, () => done());
    this.socket.uncork();
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
