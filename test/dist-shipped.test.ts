// The built package is only shipped code: nothing under dist/ imports a devDependency (vitest,
// typescript...) or a file outside the shipped folders, and no test or benchmark code is compiled
// into it. Needs `npm run build` first (it reads dist/).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shippedTreeProblems, type PackageJson } from './support/shipped-tree.js';

const DIST = resolve('dist');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;

describe('dist/ holds only shipped code', () => {
  it('no file under dist/ imports a devDependency, leaves the shipped folders or is test code', () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run "npm run build" first`);
    expect(shippedTreeProblems(DIST, pkg)).toEqual([]);
  });

  it('every bin entry of package.json is in dist/', () => {
    const bins = Object.values((pkg as { bin?: Record<string, string> }).bin ?? {});
    expect(bins.length).toBeGreaterThan(0);
    expect(bins.filter((b) => !existsSync(b))).toEqual([]);
  });
});

describe('the check finds what the old layout shipped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dist-shipped-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (rel: string, text: string): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };

  it('names each problem once, with its file', () => {
    write('agent/src/server.js', "import { pino } from 'pino';\nimport { join } from 'node:path';\n");
    write('agent/src/testing/server-test-fixture.js', "import { beforeAll } from 'vitest';\n");
    write(
      'cli/src/demo/stack.js',
      "import { startFakeOned } from '../../../test/fakes/oned/fake-oned.js';\n",
    );
    write('cli/src/main.js', "const ts = await import('typescript');\nimport './gone.js';\n");
    write('shims/src/run-shim.cjs', "const x = require('left-pad');\nconst net = require('net');\n");
    write('test/fakes/oned/fake-oned.js', "import { Server } from '@grpc/grpc-js';\n");
    write('bench/backup/run.js', '');
    write('agent/src/paths/roots.test.js', '');
    write('agent/src/transfer/test-support.js', "import { pino } from 'pino';\n");
    // prose is no import: only the real one below is checked
    write(
      'agent/src/import/adopt.js',
      "// its times are the import's, not the sender's\nimport { x } from 'left-pad';\n",
    );
    expect(shippedTreeProblems(dir, pkg).sort()).toEqual(
      [
        'agent/src/import/adopt.js: imports left-pad, not a dependency',
        'agent/src/paths/roots.test.js: a test file',
        'agent/src/transfer/test-support.js: test support (by its name)',
        'agent/src/testing/server-test-fixture.js: imports vitest, a devDependency',
        'agent/src/testing/server-test-fixture.js: test or benchmark code (a testing/ folder)',
        'agent/src/testing/server-test-fixture.js: test support (by its name)',
        'bench/backup/run.js: outside the shipped folders',
        'bench/backup/run.js: test or benchmark code (a bench/ folder)',
        'cli/src/demo/stack.js: imports ../../../test/fakes/oned/fake-oned.js, outside the shipped folders',
        'cli/src/main.js: imports ./gone.js, which is not in dist/',
        'cli/src/main.js: imports typescript, a devDependency',
        'shims/src/run-shim.cjs: imports left-pad, not a dependency',
        'test/fakes/oned/fake-oned.js: outside the shipped folders',
        'test/fakes/oned/fake-oned.js: test or benchmark code (a test/ folder)',
      ].sort(),
    );
  });
});
