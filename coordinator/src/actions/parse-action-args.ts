import { StorageError } from '../../../common/src/errors.js';
import type { ArgDecl, ArgTypes, ParsedArgs, Signature } from './action-args.js';
import { parseDiskArg } from './disk-facts.js';
import { parseAbsolutePath, parseDiskIds, parseHostPath, parseId } from './host-path.js';

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * Checks the argument count against the signature (the usage line names what oned should have sent,
 * as OpenNebula's scripts do) and parses each argument by its declared type, in order.
 */
export function parseActionArgs<A extends readonly ArgDecl[]>(
  sig: Signature<A>,
  args: readonly string[],
): ParsedArgs<A> {
  const slots = argumentSlots(sig, args.length);
  if (!slots) throw new StorageError('INVALID_ARGUMENT', `${countText(sig)}, got ${args.length}`);
  const parsed: Record<string, unknown> = {};
  for (const decl of sig.args) {
    const slot = slots.get(decl.name);
    parsed[decl.name] =
      slot === undefined ? undefined : parseOne(decl, args.slice(slot.start, slot.end), args[slot.start]);
  }
  return parsed as ParsedArgs<A>;
}

/** The one-line usage line, e.g. `fe:SOURCE host:remote_system_ds/disk.i vm_id ds_id`. */
export function usageLine(sig: Signature, withOptional = true): string {
  return sig.args
    .filter((d) => withOptional || !d.optional || isLast(sig, d))
    .map((d) => (d.optional && isLast(sig, d) ? `[${d.usage}]` : d.usage))
    .join(' ');
}

/**
 * Where the argument `name` is in a call with `count` arguments (undefined when the call does not
 * have that many, or leaves it out): the journal takes the vm_id from there.
 */
export function argumentIndex(sig: Signature, name: string, count: number): number | undefined {
  return argumentSlots(sig, count)?.get(name)?.start;
}

interface Slot {
  start: number;
  end: number;
}

/** Each declared argument's place in a call of `count` arguments, or undefined for a wrong count. */
function argumentSlots(sig: Signature, count: number): Map<string, Slot> | undefined {
  const optional = sig.args.find((d) => d.optional);
  const full = sig.args.filter((d) => d.type !== 'files').length;
  const variadic = sig.args.some((d) => d.type === 'files');
  if (variadic ? count < full + 1 : count !== full && !(optional && count === full - 1)) return undefined;
  const slots = new Map<string, Slot>();
  let at = 0;
  for (const d of sig.args) {
    if (d === optional && count !== full) continue;
    const width = d.type === 'files' ? count - full : 1;
    slots.set(d.name, { start: at, end: at + width });
    at += width;
  }
  return slots;
}

/** `expected 4 arguments (...)`, `expected 5 or 6 arguments (...)`, `... or 5 (...)`, `at least`. */
function countText(sig: Signature): string {
  const full = sig.args.filter((d) => d.type !== 'files').length;
  const optional = sig.args.find((d) => d.optional);
  if (sig.args.some((d) => d.type === 'files'))
    return `expected at least ${full + 1} arguments (${usageLine(sig)})`;
  if (!optional) return `expected ${full} arguments (${usageLine(sig)})`;
  if (isLast(sig, optional)) return `expected ${full - 1} or ${full} arguments (${usageLine(sig)})`;
  return `expected ${full} arguments (${usageLine(sig)}) or ${full - 1} (${usageLine(sig, false)})`;
}

function isLast(sig: Signature, d: ArgDecl): boolean {
  return sig.args[sig.args.length - 1] === d;
}

function parseOne(decl: ArgDecl, words: readonly string[], word: string | undefined): unknown {
  const parsers: { [T in keyof ArgTypes]: () => ArgTypes[T] } = {
    'host-path': () => parseHostPath(word, decl.name),
    'disk-path': () => parseDiskArg(word, decl.name),
    path: () => parseAbsolutePath(word, decl.name),
    id: () => parseId(word, decl.name),
    'size-mb': () => parseId(word, decl.name),
    hostname: () => {
      if (!HOSTNAME.test(word ?? ''))
        throw new StorageError('INVALID_ARGUMENT', `argument ${decl.name} "${word ?? ''}" is not a hostname`);
      return word as string;
    },
    'disk-ids': () => parseDiskIds(word ?? ''),
    text: () => word ?? '',
    files: () => [...words],
  };
  return parsers[decl.type]();
}
