import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'one-storage';
/** Source runs from common/src, the build from dist/common/src: search upwards instead of guessing. */
const MAX_LEVELS_UP = 5;

/** The project's version from its package.json, read once at start-up ("unknown" if not found). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < MAX_LEVELS_UP; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json at this level: keep looking
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
