/**
 * ListBackup's work (docs/backups.md#repository): what one backup directory holds, SHA256SUMS and
 * dot-names left out, and its vm.xml as stored (base64 text, as prebackup wrote it). A directory
 * that is missing is `exists: false`; one that is a symlink or a file is refused (nothing the
 * agent makes is either).
 */
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { MIB } from '../../../common/src/units.js';
import type { ListBackupResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { READ_FLAGS } from '../transfer/verified-open.js';
import type { BackupDir } from './backup-dir.js';
import { CHECKSUMS_FILE } from './checksums-file.js';

export const VM_XML_FILE = 'vm.xml';
const MAX_VM_XML_BYTES = 4 * MIB;

export async function listBackupDir(dir: BackupDir, where: string): Promise<ListBackupResponse> {
  const st = await lstat(dir.local).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st) return { exists: false, files: [], vmXml: Buffer.alloc(0) };
  if (!st.isDirectory()) throw new StorageError('BAD_LAYOUT', `list backup ${where}: not a directory`);
  const files: ListBackupResponse['files'] = [];
  let vmXml: Buffer = Buffer.alloc(0);
  for (const entry of (await readdir(dir.local, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    if (entry.name.startsWith('.') || entry.name === CHECKSUMS_FILE || !entry.isFile()) continue;
    const f = await lstat(join(dir.local, entry.name));
    files.push({ name: entry.name, size: f.size, allocated: f.blocks * 512 });
    if (entry.name === VM_XML_FILE) vmXml = await readVmXml(join(dir.local, entry.name), where);
  }
  return { exists: true, files, vmXml };
}

async function readVmXml(path: string, where: string): Promise<Buffer> {
  const fh = await open(path, READ_FLAGS);
  try {
    const { size } = await fh.stat();
    if (size > MAX_VM_XML_BYTES)
      throw new StorageError(
        'BAD_LAYOUT',
        `list backup ${where}: ${VM_XML_FILE} is ${size} bytes, more than ${MAX_VM_XML_BYTES}`,
      );
    return Buffer.from(await fh.readFile());
  } finally {
    await fh.close();
  }
}
