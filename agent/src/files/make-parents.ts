import { makeDirectory } from './make-directory.js';
import { removeIfEmpty } from './remove-if-empty.js';

/** Directories made by makeParents, to take away again when the action that needed them fails. */
export interface MadeDirectories {
  /**
   * Removes the directories made, deepest first, each only while it is empty: what another call put
   * there meanwhile (another disk of the same VM) stays, and so do the directories holding it.
   */
  undo(): Promise<void>;
}

/**
 * `mkdir -p dir` (makeDirectory: DIRECTORY_MODE) after an action's checks, remembering which
 * directories it made: a failed clone or mkimage leaves no VM directory that was not there before
 * (docs/security.md).
 */
export async function makeParents(dir: string): Promise<MadeDirectories> {
  const made = await makeDirectory(dir);
  return {
    async undo() {
      for (const d of [...made].reverse()) {
        // A directory that stays holds its parent too; a failure to remove is no reason to hide the
        // action's own error, which the caller reports.
        const outcome = await removeIfEmpty(d).catch(() => 'kept' as const);
        if (outcome === 'kept') return;
      }
    },
  };
}

/**
 * Makes `dir`'s missing levels (makeParents), then runs `write`; when it fails, the directories made
 * go again before its error is passed on.
 */
export async function withParents<T>(dir: string, write: () => Promise<T>): Promise<T> {
  const made = await makeParents(dir);
  try {
    return await write();
  } catch (err) {
    await made.undo();
    throw err;
  }
}
