/**
 * ListBackup's work (docs/backups.md#repository): what one backup directory holds, SHA256SUMS and
 * dot-names left out, its vm.xml as stored (base64 text, as prebackup wrote it) and, when asked,
 * its vTPM state archive checked against SHA256SUMS. A directory that is missing is
 * `exists: false`; one that is a symlink or a file is refused (nothing the agent makes is either).
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { MIB } from '../../../common/src/units.js';
import type { ListBackupResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { READ_FLAGS } from '../transfer/verified-open.js';
import type { BackupDir } from './backup-dir.js';
import { readChainSums } from './chain-sums.js';
import { CHECKSUMS_FILE } from './checksums-file.js';

export const VM_XML_FILE = 'vm.xml';
/** The vTPM state archive prebackup saves (docs/backups.md#vtpm). */
export const TPM_FILE = 'disk.tpm.0';
/** Bound on vm.xml and on the vTPM archive, both read whole into the answer. */
const MAX_SMALL_FILE_BYTES = 4 * MIB;

export async function listBackupDir(
  dir: BackupDir,
  where: string,
  withTpmState = false,
): Promise<ListBackupResponse> {
  const st = await lstat(dir.local).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st) return { exists: false, files: [], vmXml: Buffer.alloc(0), tpmState: Buffer.alloc(0) };
  if (!st.isDirectory()) throw new StorageError('BAD_LAYOUT', `list backup ${where}: not a directory`);
  const files: ListBackupResponse['files'] = [];
  let vmXml: Buffer = Buffer.alloc(0);
  let tpmState: Buffer = Buffer.alloc(0);
  for (const entry of (await readdir(dir.local, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    if (entry.name.startsWith('.') || entry.name === CHECKSUMS_FILE || !entry.isFile()) continue;
    const f = await lstat(join(dir.local, entry.name));
    files.push({ name: entry.name, size: f.size, allocated: f.blocks * 512 });
    if (entry.name === VM_XML_FILE) vmXml = await readSmallFile(join(dir.local, entry.name), where);
    if (entry.name === TPM_FILE && withTpmState) tpmState = await readTpmState(dir, where);
  }
  return { exists: true, files, vmXml, tpmState };
}

/** disk.tpm.0's bytes, which must match their SHA256SUMS line. */
async function readTpmState(dir: BackupDir, where: string): Promise<Buffer> {
  const bytes = await readSmallFile(join(dir.local, TPM_FILE), where);
  const sums = await readChainSums(join(dir.local, CHECKSUMS_FILE), `${where}/${CHECKSUMS_FILE}`);
  const expected = sums.get(TPM_FILE);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expected)
    throw new StorageError(
      'CHECKSUM_MISMATCH',
      `list backup ${where}: ${TPM_FILE} does not match its ${CHECKSUMS_FILE} (sha256 ${actual}, expected ${expected ?? 'no line'})`,
    );
  return bytes;
}

async function readSmallFile(path: string, where: string): Promise<Buffer> {
  const fh = await open(path, READ_FLAGS);
  try {
    const { size } = await fh.stat();
    if (size > MAX_SMALL_FILE_BYTES)
      throw new StorageError(
        'BAD_LAYOUT',
        `list backup ${where}: ${basename(path)} is ${size} bytes, more than ${MAX_SMALL_FILE_BYTES}`,
      );
    return Buffer.from(await fh.readFile());
  } finally {
    await fh.close();
  }
}
