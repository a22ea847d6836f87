import type { Clock } from '../../agent/src/import/clock.js';

/**
 * A clock for tests: time passes only when something sleeps on it, instantly, so a retry backoff,
 * a bandwidth limit or a progress interval costs no real time and is measured exactly.
 */
export class ManualClock implements Clock {
  /** Milliseconds since the clock was made. */
  time = 0;
  /** Every sleep asked for, in order. */
  readonly sleeps: number[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  }

  advance(ms: number): void {
    this.time += ms;
  }
}
