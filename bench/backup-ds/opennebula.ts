/**
 * The comparison side of bench/backup-ds: what OpenNebula's backup datastores do, on loopback
 * (docs/opennebula/backups.md), against the benchmark's private sshd (bench/support/ssh-server.ts,
 * warm ControlMaster, SetEnv=SHLVL=1).
 *   - rsync `backup`: `ssh host mkdir -p <dir>`, then `rsync -aS <backup>/ host:<dir>/` over ssh;
 *   - restic `backup` to a local repository: `restic backup disk.* vm.xml --force --json --tag one-<vmid>`;
 *   - the rsync downloader's restore of a chain: on the backup server (over the ControlMaster) rebase
 *     every increment onto the previous file (`qemu-img rebase -u -F qcow2 -b`), `qemu-img convert
 *     -O qcow2` the last one into a temporary directory; then `ssh cat` it over a fresh connection
 *     (the downloader's ControlMaster=no), and remove the temporary directory.
 * The remote commands are shell text because that is what OpenNebula sends sshd; every path in them
 * is the benchmark's own temporary directory.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import type { SshServer } from '../support/ssh-server.js';
import { VM_ID } from './fixture.js';

export const RESTIC_PASSWORD = 'bench-backup-ds';

/** Fails with one clear line when a tool the comparison needs is not on PATH (or in /usr/sbin). */
export async function requireTools(tools: readonly string[]): Promise<void> {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => d !== ''), '/usr/sbin'];
  const found = async (t: string): Promise<boolean> => {
    for (const d of dirs)
      if (
        await access(join(d, t), constants.X_OK).then(
          () => true,
          () => false,
        )
      )
        return true;
    return false;
  };
  const missing: string[] = [];
  for (const t of tools) if (!(await found(t))) missing.push(t);
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: install them first (apt-get install -y ${missing.join(' ')})`,
    );
  }
  // restic reads its password and cache directory from the environment.
  process.env['RESTIC_PASSWORD'] = RESTIC_PASSWORD;
  process.env['RESTIC_CACHE_DIR'] ??= join(tmpdir(), 'restic-cache-bench');
}

/** The ssh command line rsync's -e takes: the server's options without the destination. */
function rsyncShell(ssh: SshServer): string {
  return ['ssh', ...ssh.args.slice(0, -1)].join(' ');
}
const destination = (ssh: SshServer): string => ssh.args[ssh.args.length - 1] as string;

/** rsync `backup`: the backup dir's files into `repoDir` on the "rsync host". */
export async function rsyncUpload(
  ssh: SshServer,
  srcDir: string,
  repoDir: string,
  signal: AbortSignal,
): Promise<void> {
  await runTool('ssh', [...ssh.args, `mkdir -p '${repoDir}/'`], { signal });
  await runTool('rsync', ['-aS', '-e', rsyncShell(ssh), `${srcDir}/`, `${destination(ssh)}:${repoDir}/`], {
    signal,
  });
}

export async function resticInit(repo: string, signal: AbortSignal): Promise<void> {
  await runTool('restic', ['-r', repo, 'init', '-q'], { signal });
}

/** restic `backup` of a backup dir's disk files and vm.xml; returns the bytes it processed. */
export async function resticUpload(
  repo: string,
  srcDir: string,
  disks: readonly string[],
  signal: AbortSignal,
): Promise<number> {
  const files = [...disks, 'vm.xml'].map((f) => join(srcDir, f));
  const r = await runTool(
    'restic',
    ['-r', repo, 'backup', ...files, '--force', '--json', '--tag', `one-${VM_ID}`],
    {
      signal,
    },
  );
  const summary = r.stdout
    .split('\n')
    .filter((l) => l.includes('"message_type":"summary"'))
    .map((l) => JSON.parse(l) as { total_bytes_processed: number })[0];
  if (!summary) throw new Error(`restic backup printed no summary: ${r.stdout.slice(-300)}`);
  return summary.total_bytes_processed;
}

/** The rsync downloader's restore of `chain` (oldest first, files on the server) into local `dest`. */
export async function rsyncRestoreChain(
  ssh: SshServer,
  chain: readonly string[],
  tmpDir: string,
  dest: string,
  signal: AbortSignal,
): Promise<void> {
  const last = chain[chain.length - 1] as string;
  const rebase = chain.slice(1).map((file, i) => `qemu-img rebase -u -F qcow2 -b '${chain[i]}' '${file}'`);
  const prepare = [
    'set -e -o pipefail',
    ...rebase,
    `mkdir -p '${tmpDir}/'`,
    `qemu-img convert -O qcow2 '${last}' '${tmpDir}/${basename(last)}'`,
  ].join('\n');
  await runTool('ssh', [...ssh.args, prepare], { signal });
  // The downloader's own connection: ControlMaster=no must come before the other -o options.
  const fresh = ['-o', 'ControlMaster=no', '-o', 'ControlPath=none', ...ssh.args];
  await catTo(['ssh', ...fresh, `cat '${tmpDir}/${basename(last)}'`], dest, signal);
  await runTool('ssh', [...ssh.args, `rm -rf '${tmpDir}/'`], { signal });
}

/** Runs argv with stdout into `dest` (the downloader's `> file`). */
async function catTo(argv: readonly string[], dest: string, signal: AbortSignal): Promise<void> {
  const out = await open(dest, 'w');
  try {
    await new Promise<void>((done, fail) => {
      const [cmd, ...args] = argv as [string, ...string[]];
      const child = spawn(cmd, args, { stdio: ['ignore', out.fd, 'pipe'], signal });
      let err = '';
      child.stderr?.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-1000)));
      child.once('error', fail);
      child.once('exit', (code) =>
        code === 0 ? done() : fail(new Error(`${cmd} exited ${code}: ${err.trim()}`)),
      );
    });
  } finally {
    await out.close();
  }
}
