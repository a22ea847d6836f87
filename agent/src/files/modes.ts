/**
 * Modes of everything the agent creates in a datastore (docs/security.md, "Files: ownership and
 * modes"). Owner and group are the agent's own user (oneadmin on an OpenNebula node, QEMU's user
 * there). Disk images, snapshots, backups and received files are not world-readable: a guest's data
 * is the tenant's. Directories stay 0755 as OpenNebula's drivers leave them (oneadmin's umask 022),
 * because QEMU may run as another user (libvirt-qemu under Debian's default libvirt, which relabels
 * the disk files themselves but not the directories it walks through). Modes never come from a
 * sender or a source file: a received file gets these, whatever bits it had on the other host.
 */
export const DISK_FILE_MODE = 0o640;
export const DIRECTORY_MODE = 0o755;
/**
 * The agent's umask (set once at start, agent/src/main.ts): what qemu-img, mkfs, genisoimage, cp
 * and the agent itself create is at most rw-r----- (DISK_FILE_MODE for the tools' 0644 and Node's
 * 0666) from the first byte, without a chmod after the fact. Directories get DIRECTORY_MODE back
 * explicitly (files/make-directory.ts).
 */
export const AGENT_UMASK = 0o027;
/** Mode of small files the agent writes (markers); readable by the probes that run as oneadmin. */
export const SMALL_FILE_MODE = 0o644;
