import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'one-storage';
/**
 * How far up from a file its package.json may be: source runs from common/src, the build from
 * dist/common/src, and dist/shims/src/run-shim.cjs is three levels down; allow a little more.
 */
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
      // no package.json at this level: keep looking
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/** This installation's version, from its package.json (daemons read it once at start-up). */
export function packageVersion(): string {
  return packageVersionAt(fileURLToPath(import.meta.url));
}
