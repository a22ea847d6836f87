/** Byte units (KIB, MIB, GIB), defined in units.cts, which the CommonJS shim runtime loads too. */
export { GIB, KIB, MIB } from './units.cjs';
