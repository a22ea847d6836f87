import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { makeNewDirectory } from '../files/make-directory.js';

/**
 * Writes a whole snap dir atomically: a new directory beside `finalDir` holding its self link
 * (`<selfLink> -> .`, so relative backing names resolve from inside it), filled by `fill`, then
 * moved into place (replacing an old one). Nothing half-made is left on failure.
 */
export async function buildSnapDir<T>(
  finalDir: string,
  selfLink: string,
  fill: (temp: string) => Promise<T>,
): Promise<T> {
  return writeAtomically(finalDir, async (temp) => {
    await makeNewDirectory(temp);
    await symlink('.', join(temp, selfLink));
    return fill(temp);
  });
}
