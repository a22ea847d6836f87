// Byte units, defined once. CommonJS so that the shim runtime's import-free modules (sockets/frame.cts)
// can load them too; ES modules import them through units.ts.

/** Byte units. OpenNebula gives disk sizes in MiB (qemu-img's "M" suffix is MiB too). */
export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;
