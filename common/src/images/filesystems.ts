/**
 * The filesystems a new image or volatile disk may be formatted with (DISK/FS, IMAGE/FS): OpenNebula's
 * SUPPORTED_FS (ext2, ext3, ext4, xfs) and vfat. The coordinator refuses anything else before it asks
 * an agent, and the agent refuses it again; the value is data, never part of a command line.
 */
export const FILESYSTEMS = ['ext2', 'ext3', 'ext4', 'xfs', 'vfat'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];
