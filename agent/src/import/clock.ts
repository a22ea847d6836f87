import { setTimeout as sleepFor } from 'node:timers/promises';

/**
 * Time as the import code sees it: `now` in milliseconds and a cancellable `sleep`. The agent uses
 * the real clock; tests inject one that advances only when slept on, so a bandwidth limit or a
 * progress interval is checked exactly, without waiting and whatever the machine's load.
 */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: async (ms, signal) => {
    await sleepFor(ms, undefined, signal ? { signal } : {});
  },
};
