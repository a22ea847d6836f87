import type { HostPath } from './host-path.js';

// How a driver action's arguments are declared: once, as data. Parsing and the one-line usage error
// (parse-action-args.ts), the journal's vm_id and the README's table of actions are derived from it.

/** What one positional argument holds, and what the handler gets for it. */
export interface ArgTypes {
  /** `host:/absolute/path` (OpenNebula's arg_host + arg_path). */
  'host-path': HostPath;
  /** `host:/.../disk.N`: a host path naming a disk, with its disk id. */
  'disk-path': HostPath & { diskId: number };
  /** An absolute path with no host part (an image SOURCE on the front-end, a VM directory). */
  path: string;
  /** A number, -1 included (oned's ids). */
  id: number;
  /** A size in MiB. */
  'size-mb': number;
  /** A host name. */
  hostname: string;
  /** Disk ids joined by ':' (`0:1:3`). */
  'disk-ids': number[];
  /** Any word, unchecked. */
  text: string;
  /** One or more words before the fixed arguments (context's files). */
  files: string[];
}

export type ArgType = keyof ArgTypes;

/** One positional argument: `name` is used in error messages, `usage` in the usage line and docs. */
export interface ArgDecl<N extends string = string, T extends ArgType = ArgType> {
  readonly name: N;
  readonly type: T;
  readonly usage: string;
  /**
   * May be left out: last, it is a trailing optional argument (`5 or 6 arguments`); elsewhere oned
   * sends one of two forms, with or without it (`6 arguments (...) or 5 (...)`).
   */
  readonly optional?: boolean;
}

/** What arrives on stdin, for the docs (each handler decodes it). */
export type StdinKind = 'vm-xml' | 'vm-xml-base64' | 'ds-driver-action-data-base64' | 'ds-driver-action-data';

/** The arguments of one action, as oned sends them (docs/opennebula/driver-protocol.md#calls-from-the-vmm-driver and docs/opennebula/driver-protocol.md#datastore-driver). */
export interface Signature<A extends readonly ArgDecl[] = readonly ArgDecl[]> {
  readonly args: A;
  readonly stdin?: StdinKind;
}

/** The handler's view of the arguments: one typed field per declared name. */
export type ParsedArgs<A extends readonly ArgDecl[]> = {
  [D in A[number] as D['name']]: D['optional'] extends true
    ? ArgTypes[D['type']] | undefined
    : ArgTypes[D['type']];
};

/** Declares an action's arguments and stdin; `const` keeps the names for ParsedArgs. */
export function signature<const A extends readonly ArgDecl[]>(args: A, stdin?: StdinKind): Signature<A> {
  return stdin === undefined ? { args } : { args, stdin };
}

/** One argument; the usage text defaults to its name. */
export function arg<const N extends string, const T extends ArgType>(
  name: N,
  type: T,
  usage: string = name,
): ArgDecl<N, T> {
  return { name, type, usage };
}

/** An argument oned may leave out (see ArgDecl.optional). */
export function optionalArg<const N extends string, const T extends ArgType>(
  name: N,
  type: T,
  usage: string = name,
): ArgDecl<N, T> & { readonly optional: true } {
  return { name, type, usage, optional: true };
}

/** What the README says about stdin. */
export const STDIN_TEXT: Readonly<Record<StdinKind, string>> = {
  'vm-xml': 'the VM XML',
  'vm-xml-base64': 'the VM XML in base64',
  'ds-driver-action-data-base64': 'DS_DRIVER_ACTION_DATA in base64',
  'ds-driver-action-data': 'DS_DRIVER_ACTION_DATA (raw XML, or base64)',
};
