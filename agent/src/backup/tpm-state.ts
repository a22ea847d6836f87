import { dirname, join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import type { Logger } from '../../../common/src/log.js';
import { TPM_ARCHIVE, writeTpmArchive } from '../restore/tpm-archive.js';
import type { BackupDirs } from './backup-dirs.js';

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: false });

/** Whether the VM XML oned sent describes a vTPM (/VM/TEMPLATE/TPM). Unparsable XML has none. */
export function vmHasTpm(vmXml: string): boolean {
  try {
    const doc = parser.parse(vmXml) as { VM?: { TEMPLATE?: Record<string, unknown> } };
    return doc.VM?.TEMPLATE?.['TPM'] !== undefined;
  } catch {
    return false;
  }
}

/**
 * prebackup's vTPM step (docs/backups.md#vtpm): a VM with a TPM whose state directory
 * `<vmdir>/tpm` exists gets `backup/disk.tpm.0`. Returns whether it was written.
 */
export async function saveTpmState(p: {
  vmXml: string;
  dirs: BackupDirs;
  log: Logger;
  signal: AbortSignal;
}): Promise<boolean> {
  if (!vmHasTpm(p.vmXml)) return false;
  const written = await writeTpmArchive(dirname(p.dirs.bck), join(p.dirs.bck, TPM_ARCHIVE), p.signal);
  if (!written)
    p.log.warn({ dir: dirname(p.dirs.bck) }, 'the VM has a TPM but no tpm/ state directory; none saved');
  return written;
}
