import { rmdir } from 'node:fs/promises';
import { makeDirectory } from './make-directory.js';

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
      for (const d of made.reverse()) {
        try {
          await rmdir(d);
        } catch {
          // Not empty (someone else's files), or already gone: leave it and what holds it.
          return;
        }
      }
    },
  };
}
