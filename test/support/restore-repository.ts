// A grpc_backup repository made by hand, as the backup action leaves it on the backup server
// (docs/backups.md#repository): `<BASE_PATH>/<vmid>/<backup_id>/` with disk.<disk>.<inc> (qcow2),
// vm.xml (base64), optional disk.tpm.0, and SHA256SUMS; plus the BACKUP image oned keeps for it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import { writeSums } from './backup-repo-chain.js';

export interface RepoIncrement {
  inc: number;
  bid: string;
  /** Disk ids with a file in this increment. */
  disks: readonly number[];
  /** The <VM> document stored as vm.xml. */
  vmXml: string;
  tpm?: boolean;
}

/** The byte each increment writes (0x10 + inc) at inc x 64 KiB of every disk. */
export function patternOf(inc: number): number {
  return 0x10 + inc;
}

/** Writes one increment's directory under `vmDir` (local path of `<BASE_PATH>/<vmid>`). */
export async function writeIncrement(
  vmDir: string,
  i: RepoIncrement,
  parent?: RepoIncrement,
): Promise<string> {
  const dir = join(vmDir, i.bid);
  mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (const disk of i.disks) {
    const name = `disk.${disk}.${i.inc}`;
    const backing = parent === undefined ? [] : ['-F', 'qcow2', '-b', `disk.${disk}.${parent.inc}`, '-u'];
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', ...backing, join(dir, name), '4M']);
    // 64 KiB of 0x1<inc> at <inc> x 64 KiB, written into this file alone (its backing not opened).
    const alone = { driver: 'qcow2', file: { driver: 'file', filename: join(dir, name) }, backing: null };
    await runTool('qemu-io', [
      '-c',
      `write -q -P ${patternOf(i.inc)} ${i.inc * 65536} 64k`,
      `json:${JSON.stringify(alone)}`,
    ]);
    names.push(name);
  }
  writeFileSync(
    join(dir, 'vm.xml'),
    `${Buffer.from(i.vmXml)
      .toString('base64')
      .replace(/(.{60})/g, '$1\n')}\n`,
  );
  names.push('vm.xml');
  if (i.tpm === true) {
    writeFileSync(join(dir, 'disk.tpm.0'), 'not really a tar.gz');
    names.push('disk.tpm.0');
  }
  await writeSums(dir, names);
  return dir;
}

/** The BACKUP image element oned sends (IMAGE/SOURCE is the last increment's id). */
export function backupImageXml(o: {
  id: number;
  vmId: number;
  backupJobId?: number;
  increments: readonly RepoIncrement[];
}): string {
  const last = o.increments[o.increments.length - 1];
  const incs = o.increments
    .map(
      (i) =>
        `<INCREMENT><DATE>1700000000</DATE><ID>${i.inc}</ID><PARENT_ID>${i.inc - 1}</PARENT_ID>` +
        `<SIZE>4</SIZE><SOURCE><![CDATA[${i.bid}]]></SOURCE><TYPE><![CDATA[${i.inc === 0 ? 'FULL' : 'INCREMENT'}]]></TYPE></INCREMENT>`,
    )
    .join('');
  return (
    `<IMAGE><ID>${o.id}</ID><UID>5</UID><GID>100</GID><UNAME>alice</UNAME><GNAME>users</GNAME>` +
    `<NAME>${o.vmId} backup</NAME><TYPE>6</TYPE><PERSISTENT>0</PERSISTENT>` +
    `<SOURCE><![CDATA[${last?.bid ?? ''}]]></SOURCE><PATH><![CDATA[]]></PATH><FORMAT><![CDATA[raw]]></FORMAT>` +
    `<SIZE>8</SIZE><STATE>1</STATE><DATASTORE_ID>100</DATASTORE_ID><VMS><ID>${o.vmId}</ID></VMS>` +
    `<TEMPLATE>${o.backupJobId === undefined ? '' : `<BACKUP_JOB_ID><![CDATA[${o.backupJobId}]]></BACKUP_JOB_ID>`}</TEMPLATE>` +
    `<BACKUP_INCREMENTS>${incs}</BACKUP_INCREMENTS></IMAGE>`
  );
}

/** DS_DRIVER_ACTION_DATA's extras for RESTORE: DESTINATION_DS_ID and the user's TEMPLATE. */
export function restoreExtras(destDsId: number | null, template: Readonly<Record<string, string>>): string {
  return (
    (destDsId === null ? '' : `<DESTINATION_DS_ID>${destDsId}</DESTINATION_DS_ID>`) +
    `<TEMPLATE>${Object.entries(template)
      .map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`)
      .join('')}</TEMPLATE>`
  );
}
