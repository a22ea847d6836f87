// Doctor's look at the shims and probes in oned's remotes directory: every file installShims
// writes (shims/src/install.ts) must be there, be ours, name the coordinator's socket, and load the
// runtime of this very version (the same file, once symlinks such as `current` are resolved).
import { constants } from 'node:fs';
import { access, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HOST_SIDE_TM_ACTIONS, shimEntries } from '../../../common/src/drivers/driver-actions.js';
import { PROBE_FILES, agentQueryScript } from '../../../shims/src/agent-query-script.js';
import { RUNTIME_FILE, SHIM_FILE_MODE, shimSource } from '../../../shims/src/install.js';
import { fail, ok, type DoctorCheck } from './doctor-check.js';
import { packageVersionAt } from '../../../common/src/version.js';

/** How many file names a failed line quotes before it just counts. */
const NAMED_FILES = 3;

interface Expected {
  file: string;
  /** The installed text this version writes, given the file's own node and runtime paths. */
  expected: (installed: string) => string | undefined;
}

/**
 * The checks of the installed files; `runtimePath` is this version's run-shim.cjs, `socket` the
 * coordinator's socket.
 */
export async function shimChecks(
  remotesDir: string,
  socket: string,
  runtimePath: string,
): Promise<DoctorCheck[]> {
  const version = packageVersionAt(runtimePath);
  const fix = `one-storage shims install --remotes ${remotesDir} --socket ${socket} --runtime ${dirname(runtimePath)}`;
  const expected: Expected[] = [
    ...shimEntries().map((entry) => ({
      file: join(remotesDir, entry.kind, entry.driver, entry.action),
      expected: (installed: string) => {
        if (entry.kind === 'tm' && HOST_SIDE_TM_ACTIONS.includes(entry.action))
          return agentQueryScript('monitor_ds');
        const paths = installedPaths(installed);
        return paths && shimSource(entry, { ...paths, socketPath: socket });
      },
    })),
    ...PROBE_FILES.map((p) => ({
      file: join(remotesDir, 'im', p.path),
      expected: () => agentQueryScript(p.kind),
    })),
  ];
  const missing: string[] = [];
  const differ: string[] = [];
  const notExecutable: string[] = [];
  const runtimes = new Map<string, string[]>();
  const nodes = new Set<string>();
  for (const e of expected) {
    const text = await readFile(e.file, 'utf8').catch(() => undefined);
    if (text === undefined) {
      missing.push(e.file);
      continue;
    }
    if (text !== e.expected(text)) differ.push(e.file);
    // oned runs each file itself: without the execute bits the action fails before it starts.
    if (((await stat(e.file)).mode & SHIM_FILE_MODE) !== SHIM_FILE_MODE) notExecutable.push(e.file);
    const paths = installedPaths(text);
    if (paths) {
      runtimes.set(paths.runtimePath, [...(runtimes.get(paths.runtimePath) ?? []), e.file]);
      nodes.add(paths.nodePath);
    }
  }
  const checks: DoctorCheck[] = [];
  if (missing.length > 0) checks.push(fail('shims', `${named(missing)} ${be(missing)} missing`, fix));
  if (differ.length > 0) {
    checks.push(
      fail(
        'shims',
        `${named(differ)} ${be(differ)} not as this version writes them (edited, or for another socket than ${socket})`,
        fix,
      ),
    );
  }
  if (notExecutable.length > 0) {
    checks.push(fail('shims', `${named(notExecutable)} ${be(notExecutable)} not mode 0755`, fix));
  }
  const ours = await realpath(runtimePath).catch(() => runtimePath);
  for (const [runtime, files] of runtimes) {
    const real = await realpath(runtime).catch(() => undefined);
    if (real === ours) continue;
    const what =
      real === undefined
        ? `${runtime}, which is missing`
        : `${runtime} (version ${packageVersionAt(real)}), not this version's ${ours} (${version})`;
    checks.push(
      fail('shims', `${named(files)} ${files.length === 1 ? 'loads' : 'load'} the runtime ${what}`, fix),
    );
  }
  for (const node of nodes) {
    const runs = await access(node, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!runs) checks.push(fail('shims', `the shims run ${node}, which is missing or not executable`, fix));
  }
  if (checks.length === 0) {
    checks.push(
      ok('shims', `${expected.length} shims and probes under ${remotesDir}, runtime of version ${version}`),
    );
  }
  return checks;
}

/** The node and runtime paths an installed shim names (its `#!` line and its require). */
function installedPaths(text: string): { nodePath: string; runtimePath: string } | undefined {
  const [first = ''] = text.split('\n', 1);
  const runtime = /require\(("(?:[^"\\]|\\.)*")\)/.exec(text)?.[1];
  if (!first.startsWith('#!') || runtime === undefined) return undefined;
  const runtimePath = JSON.parse(runtime) as string;
  if (!runtimePath.endsWith(`/${RUNTIME_FILE}`)) return undefined;
  return { nodePath: first.slice(2), runtimePath };
}

function named(files: readonly string[]): string {
  const shown = files.slice(0, NAMED_FILES).join(', ');
  const more = files.length > NAMED_FILES ? ` and ${files.length - NAMED_FILES} more` : '';
  return `${shown}${more}`;
}

function be(files: readonly string[]): string {
  return files.length === 1 ? 'is' : 'are';
}
