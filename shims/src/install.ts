// Installs one executable per driver action under oned's remotes directory. Each is a few lines of
// JavaScript that hand their kind/driver/action to the compiled runtime (run-shim.js), so the logic
// lives in one place and an upgrade of the package needs no re-install unless paths change.
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../../common/src/files/atomic-file.js';
import {
  HOST_SIDE_TM_ACTIONS,
  shimEntries,
  type ShimEntry,
} from '../../common/src/drivers/driver-actions.js';
import { PROBE_FILES, agentQueryScript } from './agent-query-script.js';
import { BACKUP_SUFFIX, isOwnFile } from './installed-files.js';

/** rwxr-xr-x: oned (oneadmin) executes the shims; only the installer may change them. */
export const SHIM_FILE_MODE = 0o755;
const DIRECTORY_MODE = 0o755;
const PERMISSION_BITS = 0o777;
/** The runtime every entry loads, found next to this module in the compiled tree (CommonJS, see there). */
export const RUNTIME_FILE = 'run-shim.cjs';
/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE); longer ones are cut. */
const MAX_SHEBANG_BYTES = 255;

export interface InstallShimsOptions {
  /** oned's remotes directory, e.g. /var/lib/one/remotes. */
  remotesDir: string;
  /** The coordinator's socket, baked into every entry (ONE_STORAGE_SOCKET overrides it at run time). */
  socketPath: string;
  /** Absolute path of the node binary for the `#!` line; defaults to the one running the installer. */
  nodePath?: string;
  /** Directory holding the compiled run-shim.js; defaults to this module's own directory. */
  runtimeDir?: string;
}

/**
 * Write every shim, plus the kvm-probes.d probes that ask the local agent (`<remotes>/im/`, where
 * `onehost sync` takes them from); repeated runs leave identical files untouched. Returns the paths
 * written or kept (`files`) and those actually written (`written`: empty on a repeat).
 */
export async function installShims(
  opts: InstallShimsOptions,
): Promise<{ files: string[]; written: string[] }> {
  const nodePath = opts.nodePath ?? process.execPath;
  const runtimeDir = opts.runtimeDir ?? dirname(fileURLToPath(import.meta.url));
  const runtimePath = join(runtimeDir, RUNTIME_FILE);
  validateNodePath(nodePath);
  if (!isAbsolute(opts.socketPath)) throw new Error(`socketPath must be absolute, got "${opts.socketPath}"`);
  await stat(runtimePath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`shim runtime ${runtimePath} is missing (${err.code}): build the project first`);
  });

  const files: string[] = [];
  const written: string[] = [];
  for (const entry of shimEntries()) {
    const dir = join(opts.remotesDir, entry.kind, entry.driver);
    await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
    const file = join(dir, entry.action);
    const source =
      entry.kind === 'tm' && HOST_SIDE_TM_ACTIONS.includes(entry.action)
        ? agentQueryScript('monitor_ds')
        : shimSource(entry, { nodePath, runtimePath, socketPath: opts.socketPath });
    if (await writeShim(file, source)) written.push(file);
    files.push(file);
  }
  for (const probe of PROBE_FILES) {
    const file = join(opts.remotesDir, 'im', probe.path);
    await mkdir(dirname(file), { recursive: true, mode: DIRECTORY_MODE });
    await keepForeignProbe(file);
    if (await writeShim(file, agentQueryScript(probe.kind))) written.push(file);
    files.push(file);
  }
  return { files, written };
}

/** The text of one installed entry. */
export function shimSource(
  entry: ShimEntry,
  paths: { nodePath: string; runtimePath: string; socketPath: string },
): string {
  const runtimeUrl = pathToFileURL(paths.runtimePath).href;
  const options = JSON.stringify({ ...entry, socketPath: paths.socketPath });
  // The file has no extension, so node runs it as CommonJS (no package.json above /var/lib/one) or, in
  // a "type": "module" package, as an ES module. `require` is the fast path; `import()` covers the
  // other case. Either way a missing runtime becomes one line on stderr, not a stack trace.
  return [
    `#!${paths.nodePath}`,
    `// one-storage shim for ${entry.kind}/${entry.driver}/${entry.action}: written by installShims, do not edit.`,
    'new Promise((resolve) =>',
    `  resolve(typeof require === 'function' ? require(${JSON.stringify(paths.runtimePath)}) : import(${JSON.stringify(runtimeUrl)})),`,
    ')',
    `  .then((runtime) => runtime.runShim(${options}))`,
    '  .then(',
    '    (code) => {',
    '      process.exitCode = code;',
    '    },',
    '    (err) => {',
    // Only the first line: node's "Cannot find module" adds a require stack, and every other line
    // would be glued into oned's error message.
    "      const reason = String(err && err.message).split('\\n')[0];",
    "      process.stderr.write('one-storage: shim runtime failed: ' + reason + '\\n');",
    '      process.exitCode = 1;',
    '    },',
    '  );',
    '',
  ].join('\n');
}

function validateNodePath(nodePath: string): void {
  if (!isAbsolute(nodePath)) throw new Error(`nodePath must be absolute, got "${nodePath}"`);
  // The kernel splits a `#!` line at the first blank and cuts it at its buffer size.
  if (/\s/.test(nodePath)) throw new Error(`nodePath must not contain blanks, got "${nodePath}"`);
  if (Buffer.byteLength(`#!${nodePath}`) > MAX_SHEBANG_BYTES) {
    throw new Error(`nodePath is too long for a #! line (${MAX_SHEBANG_BYTES} bytes max): "${nodePath}"`);
  }
}

/**
 * OpenNebula ships a probe of the same name (its monitor_ds.rb): the first install keeps it beside
 * ours so that uninstallShims can put it back.
 */
async function keepForeignProbe(file: string): Promise<void> {
  if ((await isOwnFile(file)) !== false) return;
  const backup = `${file}${BACKUP_SUFFIX}`;
  if ((await isOwnFile(backup)) === undefined) await rename(file, backup);
}

/**
 * Written atomically (common/src/files/atomic-file.ts), so oned never runs a half-written shim, and
 * executable whatever the umask. A file that already has this content and mode is left alone: a
 * re-install changes nothing, not even mtimes.
 */
async function writeShim(file: string, content: string): Promise<boolean> {
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current === content && ((await stat(file)).mode & PERMISSION_BITS) === SHIM_FILE_MODE) return false;
  await writeFileAtomic(file, content, { mode: SHIM_FILE_MODE });
  return true;
}
