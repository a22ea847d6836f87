import type { Logger } from '../../../common/src/log.js';
import type { AgentServiceServer } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentContext } from './context.js';
import { buildIsoImage } from './build-iso.js';
import { cloneOverlay } from './clone-overlay.js';
import { convertImage } from './convert.js';
import { copyPath } from './copy.js';
import { copyDiskLive } from './copy-disk-live.js';
import { copyImageChain } from './copy-image-chain.js';
import { createImage } from './create-image.js';
import { createProbe } from './create-probe.js';
import { deletePath } from './delete.js';
import { exportImage } from './export-image.js';
import { backupCancel } from './backup-cancel.js';
import { backupFinish } from './backup-finish.js';
import { backupPrepare } from './backup-prepare.js';
import { adaptHandler } from './error-adapter.js';
import { hello } from './hello.js';
import { health } from './health.js';
import { cancelJobs, listJobs } from './jobs.js';
import { imageInfo } from './image-info.js';
import { imageSnapshotDelete, imageSnapshotFlatten, imageSnapshotRevert } from './image-snapshot.js';
import { importImage } from './import-image.js';
import { linkImage } from './link-image.js';
import { makeDir } from './make-dir.js';
import { relinkDisk } from './relink-disk.js';
import { removeEmptyDirs } from './remove-empty-dirs.js';
import { monitorDatastore, setMonitorHost } from './monitor-datastore.js';
import { openImportSource } from './open-import-source.js';
import { probeImageSource } from './probe-image-source.js';
import { resizeImage } from './resize.js';
import { restoreDisk } from './restore-disk.js';
import { restoreTpm } from './restore-tpm.js';
import { saveImageChain } from './save-image-chain.js';
import { setMonitorMarker } from './set-monitor-marker.js';
import { snapshotCreate } from './snapshot-create.js';
import { snapshotDelete } from './snapshot-delete.js';
import { snapshotRevert } from './snapshot-revert.js';
import { statPath } from './stat.js';
import { openSend, receive } from './transfer.js';
import { listBackup } from './list-backup.js';
import { receiveBackup } from './receive-backup.js';
import { removeBackups } from './remove-backups.js';
import { openBackupChain } from './open-backup-chain.js';
import { flattenBackups } from './flatten-backups.js';

/** The AgentService implementation for grpc-js `server.addService`: every handler behind the adapter. */
export function createAgentService(agent: AgentContext, logger: Logger): AgentServiceServer {
  return {
    hello: adaptHandler(agent, logger, 'Hello', hello),
    health: adaptHandler(agent, logger, 'Health', health),
    listJobs: adaptHandler(agent, logger, 'ListJobs', listJobs),
    cancelJobs: adaptHandler(agent, logger, 'CancelJobs', cancelJobs),
    makeDir: adaptHandler(agent, logger, 'MakeDir', makeDir),
    removeEmptyDirs: adaptHandler(agent, logger, 'RemoveEmptyDirs', removeEmptyDirs),
    delete: adaptHandler(agent, logger, 'Delete', deletePath),
    stat: adaptHandler(agent, logger, 'Stat', statPath),
    setMonitorMarker: adaptHandler(agent, logger, 'SetMonitorMarker', setMonitorMarker),
    resize: adaptHandler(agent, logger, 'Resize', resizeImage),
    copy: adaptHandler(agent, logger, 'Copy', copyPath),
    createProbe: adaptHandler(agent, logger, 'CreateProbe', createProbe),
    openSend: adaptHandler(agent, logger, 'OpenSend', openSend),
    receive: adaptHandler(agent, logger, 'Receive', receive),
    createImage: adaptHandler(agent, logger, 'CreateImage', createImage),
    buildIso: adaptHandler(agent, logger, 'BuildIso', buildIsoImage),
    convert: adaptHandler(agent, logger, 'Convert', convertImage),
    imageInfo: adaptHandler(agent, logger, 'ImageInfo', imageInfo),
    snapshotCreate: adaptHandler(agent, logger, 'SnapshotCreate', snapshotCreate),
    snapshotRevert: adaptHandler(agent, logger, 'SnapshotRevert', snapshotRevert),
    snapshotDelete: adaptHandler(agent, logger, 'SnapshotDelete', snapshotDelete),
    cloneOverlay: adaptHandler(agent, logger, 'CloneOverlay', cloneOverlay),
    linkImage: adaptHandler(agent, logger, 'LinkImage', linkImage),
    copyImageChain: adaptHandler(agent, logger, 'CopyImageChain', copyImageChain),
    saveImageChain: adaptHandler(agent, logger, 'SaveImageChain', saveImageChain),
    relinkDisk: adaptHandler(agent, logger, 'RelinkDisk', relinkDisk),
    copyDiskLive: adaptHandler(agent, logger, 'CopyDiskLive', copyDiskLive),
    monitorDatastore: adaptHandler(agent, logger, 'MonitorDatastore', monitorDatastore),
    setMonitorHost: adaptHandler(agent, logger, 'SetMonitorHost', setMonitorHost),
    backupPrepare: adaptHandler(agent, logger, 'BackupPrepare', backupPrepare),
    backupFinish: adaptHandler(agent, logger, 'BackupFinish', backupFinish),
    backupCancel: adaptHandler(agent, logger, 'BackupCancel', backupCancel),
    importImage: adaptHandler(agent, logger, 'ImportImage', importImage),
    openImportSource: adaptHandler(agent, logger, 'OpenImportSource', openImportSource),
    probeImageSource: adaptHandler(agent, logger, 'ProbeImageSource', probeImageSource),
    imageSnapshotDelete: adaptHandler(agent, logger, 'ImageSnapshotDelete', imageSnapshotDelete),
    imageSnapshotRevert: adaptHandler(agent, logger, 'ImageSnapshotRevert', imageSnapshotRevert),
    imageSnapshotFlatten: adaptHandler(agent, logger, 'ImageSnapshotFlatten', imageSnapshotFlatten),
    exportImage: adaptHandler(agent, logger, 'ExportImage', exportImage),
    receiveBackup: adaptHandler(agent, logger, 'ReceiveBackup', receiveBackup),
    listBackup: adaptHandler(agent, logger, 'ListBackup', listBackup),
    removeBackups: adaptHandler(agent, logger, 'RemoveBackups', removeBackups),
    openBackupChain: adaptHandler(agent, logger, 'OpenBackupChain', openBackupChain),
    flattenBackups: adaptHandler(agent, logger, 'FlattenBackups', flattenBackups),
    restoreDisk: adaptHandler(agent, logger, 'RestoreDisk', restoreDisk),
    restoreTpm: adaptHandler(agent, logger, 'RestoreTpm', restoreTpm),
  };
}
