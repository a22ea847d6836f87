// Helpers for the backup tests: a stand-in for the backup datastore (each backup's files copied
// out of <vmdir>/backup before post_backup removes it) and a restore as OpenNebula's downloader does
// it (each increment rebased onto the previous one with `qemu-img rebase -u`, then converted).
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { imagesIdentical } from './files.js';

/** Restores a chain of backup files (oldest first) into `out` (raw) and says if it equals `expected`. */
export async function restoreMatches(chain: readonly string[], expected: string): Promise<boolean> {
  const dir = await mkdtemp(join(chain[0] ? join(chain[0], '..') : '/tmp', 'restore-'));
  try {
    const copies: string[] = [];
    for (const f of chain) {
      const c = join(dir, basename(f));
      await copyFile(f, c);
      copies.push(c);
    }
    for (let i = 1; i < copies.length; i++) {
      await runTool('qemu-img', [
        'rebase',
        '-u',
        '-f',
        'qcow2',
        '-F',
        'qcow2',
        '-b',
        basename(copies[i - 1] ?? ''),
        copies[i] ?? '',
      ]);
    }
    const out = join(dir, 'restored.raw');
    await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', copies[copies.length - 1] ?? '', out]);
    return await imagesIdentical(out, 'raw', expected, 'raw');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The guest-visible content of a disk now, as raw (read with -U: the VM may hold it). */
export async function snapshotContent(disk: string, format: string, out: string): Promise<void> {
  await runTool('qemu-img', ['convert', '-U', '-f', format, '-O', 'raw', disk, out]);
}

/** Copies a backup file into the stand-in repository and returns the copy's path. */
export async function keep(file: string, repo: string, backupId: number): Promise<string> {
  const dir = join(repo, String(backupId));
  await mkdir(dir, { recursive: true });
  const dest = join(dir, basename(file));
  await copyFile(file, dest);
  return dest;
}
