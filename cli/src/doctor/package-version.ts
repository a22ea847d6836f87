import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PACKAGE_NAME = 'one-storage';
/** dist/shims/src/run-shim.cjs is three levels below the package root; allow a little more. */
const MAX_LEVELS_UP = 6;

/** The one-storage version of the package holding `file` ("unknown" when none is found). */
export function packageVersionAt(file: string): string {
  let dir = dirname(file);
  for (let i = 0; i < MAX_LEVELS_UP; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
