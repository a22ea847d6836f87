import { mkdir, rmdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DIRECTORY_MODE } from './modes.js';

/** Directories made by makeParents, to take away again when the action that needed them fails. */
export interface MadeDirectories {
  /**
   * Removes the directories made, deepest first, each only while it is empty: what another call put
   * there meanwhile (another disk of the same VM) stays, and so do the directories holding it.
   */
  undo(): Promise<void>;
}

/**
 * `mkdir -p dir` (DIRECTORY_MODE) after an action's checks, remembering which directories it made:
 * a failed clone or mkimage leaves no VM directory that was not there before (docs/security.md).
 */
export async function makeParents(dir: string): Promise<MadeDirectories> {
  const first = await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
  if (first === undefined) return { undo: async () => {} };
  const made = [first];
  for (const part of relative(first, dir)
    .split(sep)
    .filter((p) => p !== '')) {
    made.push(join(made[made.length - 1] as string, part));
  }
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
