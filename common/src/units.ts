/** Byte units. OpenNebula gives disk sizes in MiB (qemu-img's "M" suffix is MiB too). */
export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;
