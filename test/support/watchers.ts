import { type FSWatcher, type WatchListener, watch } from 'node:fs';

/** The watchers made through watchCounted that have not closed yet. */
const open = new Set<FSWatcher>();

/**
 * fs.watch, counted: the test support's watch helpers (test/support/files.ts) make every watcher
 * here, so a test can check that none is left open once a wait has ended, however it ended.
 */
export function watchCounted(path: string, listener?: WatchListener<string>): FSWatcher {
  const watcher = listener ? watch(path, listener) : watch(path);
  open.add(watcher);
  watcher.once('close', () => open.delete(watcher));
  return watcher;
}

/**
 * How many counted watchers are still open. A watcher announces its close on the next tick, so
 * this first lets pending ticks run (one turn of the event loop, no timer).
 */
export async function openWatchers(): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  return open.size;
}
