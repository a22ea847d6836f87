import { StorageError } from '../../../common/src/errors.js';

/** `<base>/<vmid>/<backup_id>/disk.<disk>.<inc>` (docs/backups.md#repository). */
const CHAIN_FILE = /^(\/.+)\/(0|[1-9]\d{0,9})\/([0-9a-f]{6,32})\/disk\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;

export interface ChainFile {
  /** The oned-view path as asked. */
  path: string;
  /** Its backup directory (oned view): `<base>/<vmid>/<backup_id>`. */
  dir: string;
  name: string;
  bid: string;
  inc: number;
}

export interface ChainShape {
  /** `<base>/<vmid>` (oned view). */
  vmDir: string;
  diskId: number;
  /** Oldest first. */
  files: ChainFile[];
}

/**
 * Checks the shape of a restore point's chain (OpenBackupChain, FlattenBackups): at least one file,
 * each `<base>/<vmid>/<backup_id>/disk.<disk>.<inc>`, all of one VM directory and one disk, in
 * distinct backup directories, increments going up. INVALID_ARGUMENT naming the first offender.
 */
export function chainShape(chain: readonly string[], what: string): ChainShape {
  if (chain.length === 0) throw new StorageError('INVALID_ARGUMENT', `${what}: chain is empty`);
  const files: ChainFile[] = [];
  let vmDir = '';
  let diskId = -1;
  for (const path of chain) {
    const m = CHAIN_FILE.exec(path);
    if (!m)
      throw new StorageError(
        'INVALID_ARGUMENT',
        `${what}: ${path} is not <base>/<vm id>/<backup id>/disk.<disk id>.<increment>`,
      );
    const [, base, vm, bid, disk, inc] = m as unknown as [string, string, string, string, string, string];
    const dir = `${base}/${vm}/${bid}`;
    if (files.length === 0) {
      vmDir = `${base}/${vm}`;
      diskId = Number(disk);
    } else {
      const prev = files[files.length - 1] as ChainFile;
      if (`${base}/${vm}` !== vmDir)
        throw new StorageError('INVALID_ARGUMENT', `${what}: ${path} is not in ${vmDir} like the first file`);
      if (Number(disk) !== diskId)
        throw new StorageError('INVALID_ARGUMENT', `${what}: ${path} is not of disk ${diskId}`);
      if (Number(inc) <= prev.inc)
        throw new StorageError(
          'INVALID_ARGUMENT',
          `${what}: ${path} does not come after increment ${prev.inc}`,
        );
      if (files.some((f) => f.bid === bid))
        throw new StorageError('INVALID_ARGUMENT', `${what}: backup ${bid} appears twice in the chain`);
    }
    files.push({ path, dir, name: `disk.${disk}.${inc}`, bid, inc: Number(inc) });
  }
  return { vmDir, diskId, files };
}
