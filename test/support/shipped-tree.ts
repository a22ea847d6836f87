/**
 * What the built package may not hold: every .js/.cjs/.mjs file under a dist/ directory is read and
 * each problem is returned as one line naming the file. A shipped file imports only Node's
 * built-ins, the package's `dependencies`, and (relatively) other shipped files; no test or
 * benchmark code is compiled in.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** The folders `tsconfig.build.json` compiles, relative to dist/. */
export const SHIPPED_FOLDERS = [
  'common/src',
  'agent/src',
  'coordinator/src',
  'shims/src',
  'cli/src',
  'proto/gen',
];
/** Folder names that hold test or benchmark code, wherever they are. */
const TEST_FOLDERS = new Set(['test', 'tests', 'testing', 'bench', '__tests__']);
/** test-support.js, qcow2-test-fixture.js, disk-testing.js: test helpers by their name. */
const TEST_NAME = /(^|-)(test|testing)(-|\.)/;
const JS_FILE = /\.(c|m)?js$/;
/**
 * Static and dynamic imports, re-exports and require() calls, with their specifier. A specifier
 * holds no blanks, so prose in a comment ("the import's, not the sender's") is no import.
 */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])([^'"\s]+)\1/g;

export interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export function shippedTreeProblems(dist: string, pkg: PackageJson): string[] {
  const distDir = resolve(dist);
  const problems: string[] = [];
  const dependencies = new Set(Object.keys(pkg.dependencies ?? {}));
  const devDependencies = new Set(Object.keys(pkg.devDependencies ?? {}));
  const builtins = new Set(builtinModules);
  const shipped = SHIPPED_FOLDERS.map((f) => resolve(distDir, f) + sep);

  for (const file of jsFiles(distDir)) {
    const rel = relative(distDir, file);
    const parts = rel.split(sep);
    const folder = parts.slice(0, -1).find((p) => TEST_FOLDERS.has(p));
    if (folder) problems.push(`${rel}: test or benchmark code (a ${folder}/ folder)`);
    if (/\.test\.(c|m)?js$/.test(rel)) problems.push(`${rel}: a test file`);
    else if (TEST_NAME.test(parts[parts.length - 1] ?? ''))
      problems.push(`${rel}: test support (by its name)`);
    if (!shipped.some((s) => file.startsWith(s))) problems.push(`${rel}: outside the shipped folders`);

    for (const [, , spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (spec === undefined) continue;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!shipped.some((s) => target.startsWith(s)))
          problems.push(`${rel}: imports ${spec}, outside the shipped folders`);
        else if (!existsSync(target)) problems.push(`${rel}: imports ${spec}, which is not in dist/`);
        continue;
      }
      const name = packageName(spec);
      if (spec.startsWith('node:') || builtins.has(name)) continue;
      if (devDependencies.has(name)) problems.push(`${rel}: imports ${spec}, a devDependency`);
      else if (!dependencies.has(name)) problems.push(`${rel}: imports ${spec}, not a dependency`);
    }
  }
  return problems;
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return (spec.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && JS_FILE.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}
