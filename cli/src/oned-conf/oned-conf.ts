/**
 * The oned.conf blocks that declare one-storage's drivers (docs/opennebula/settings.md#driver-declarations): add the
 * TM names to TM_MAD's -d list and declare each with TM_MAD_CONF; add the image datastore driver to
 * DATASTORE_MAD's -d list (and the shared-mode TM to its -s list, so oned sends that system
 * datastore's MONITOR) and declare it with DS_MAD_CONF. `one-storage oned-conf` prints this text and
 * docs/oned-conf.md carries the same (a test keeps them equal).
 */
export const ONED_CONF_SNIPPET = `# one-storage: append grpc,grpc_qcow2 to the -d list of TM_MAD (keep your other drivers)
TM_MAD = [
    EXECUTABLE = "one_tm",
    ARGUMENTS = "-t 15 -d dummy,lvm,shared,fs_lvm,fs_lvm_ssh,qcow2,ssh,local,ceph,dev,iscsi_libvirt,grpc,grpc_qcow2"
]

# Local mode (replaces ssh/local): system datastore on each host's disk, images copied to it.
# TM_MAD_SYSTEM="ssh" lets an image datastore of ours serve VMs on an ssh system datastore
# (oned then calls clone.ssh, ln.ssh, ...; docs/opennebula/driver-protocol.md#mixed-modes).
TM_MAD_CONF = [
    NAME = "grpc", LN_TARGET = "SYSTEM", CLONE_TARGET = "SYSTEM", SHARED = "NO",
    DS_MIGRATE = "YES", DS_LIVE_MIGRATE = "YES", DS_MIGRATE_SNAP = "YES", ALLOW_ORPHANS = "FORMAT",
    TM_MAD_SYSTEM = "ssh", LN_TARGET_SSH = "SYSTEM", CLONE_TARGET_SSH = "SYSTEM", DISK_TYPE_SSH = "FILE"
]

# Shared mode (replaces qcow2/shared): datastores on a filesystem every host mounts; clones are
# qcow2 overlays. Mixed mode with a local system datastore of ours (grpc) or OpenNebula's ssh.
TM_MAD_CONF = [
    NAME = "grpc_qcow2", LN_TARGET = "NONE", CLONE_TARGET = "SYSTEM", SHARED = "YES", DRIVER = "qcow2",
    DS_MIGRATE = "YES", DS_LIVE_MIGRATE = "YES", DS_MIGRATE_SNAP = "YES", ALLOW_ORPHANS = "FORMAT",
    TM_MAD_SYSTEM = "ssh,grpc",
    LN_TARGET_SSH = "SYSTEM", CLONE_TARGET_SSH = "SYSTEM", DISK_TYPE_SSH = "FILE",
    LN_TARGET_GRPC = "SYSTEM", CLONE_TARGET_GRPC = "SYSTEM", DISK_TYPE_GRPC = "FILE"
]

# one-storage: append grpc (image datastores) and grpc_backup (backup datastores) to the -d list of
# DATASTORE_MAD and grpc_qcow2 to its -s list (oned sends a shared system datastore's MONITOR through the datastore driver to the TM
# named there; docs/opennebula/driver-protocol.md#datastore-driver). Keep your other drivers.
DATASTORE_MAD = [
    EXECUTABLE = "one_datastore",
    ARGUMENTS = "-t 15 -d dummy,fs,lvm,ceph,dev,iscsi_libvirt,restic,rsync,virtiofs,interactive,grpc,grpc_backup -s dummy,lvm,shared,ssh,local,ceph,fs_lvm,fs_lvm_ssh,qcow2,grpc_qcow2"
]

# Image datastore driver (replaces fs), with fs's settings: no required attribute, persistent and
# non-persistent images, images may be exported to a marketplace.
DS_MAD_CONF = [
    NAME = "grpc", REQUIRED_ATTRS = "", PERSISTENT_ONLY = "NO", MARKETPLACE_ACTIONS = "export"
]

# Backup datastore driver (replaces rsync): the backups live on the host GRPC_BACKUP_HOST names,
# whose agent serves the datastore's BASE_PATH; backup images are persistent, as rsync's.
DS_MAD_CONF = [
    NAME = "grpc_backup", REQUIRED_ATTRS = "GRPC_BACKUP_HOST", PERSISTENT_ONLY = "YES"
]
`;
