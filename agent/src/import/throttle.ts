import { type Clock, realClock } from './clock.js';

/** How much may pass at once after an idle spell: a tenth of a second's worth of the rate. */
const BURST_SECONDS = 0.1;

/**
 * A token bucket on the read side of an import (LIMIT_TRANSFER_BW): tokens accrue at `bytesPerSecond`
 * up to a small burst, each chunk read takes its length in tokens, and a reader that overdraws
 * waits until the debt is paid. Reading slower than the network delivers is what limits a TCP
 * download (the receive window fills, the sender slows), so nothing else is needed.
 */
export class Throttle {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be positive, got ${bytesPerSecond}`);
    this.burst = Math.max(1, bytesPerSecond * BURST_SECONDS);
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Accounts for `bytes` just read, waiting first as long as the rate requires. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const wait = this.debit(bytes);
    if (wait === 0) return;
    await this.clock.sleep(wait, signal);
    // The sleep paid the debt: the tokens it accrued are exactly what was missing.
    this.tokens = 0;
    this.last = this.clock.now();
  }

  /**
   * Accounts for `bytes` just taken and answers how long (ms) the taker must now wait before the
   * next (0: no wait): for a reader that pauses a stream rather than awaits (the data path's pull).
   */
  debit(bytes: number): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }
}
