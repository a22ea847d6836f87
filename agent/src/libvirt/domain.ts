import { XMLParser } from 'fast-xml-parser';
import { StorageError } from '../../../common/src/errors.js';
import { type VirshOptions, virsh } from './virsh.js';

/** A libvirt domain name as OpenNebula deploys them (`one-<vmid>`), or any other plain name. */
const DOMAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,199}$/;
/** A disk target (`vda`, `sdb`, `hdc`). */
const TARGET = /^[a-z]{2,3}[a-z0-9]{0,4}$/;

/** One file-backed disk of a running domain, as libvirt reports it. */
export interface DomainDisk {
  readonly target: string;
  /** The file QEMU writes (the active layer). */
  readonly source: string;
  readonly format: string;
  /** The backing files below the active layer, nearest first, as libvirt resolved them. */
  readonly backing: readonly string[];
  /**
   * libvirt's index of every layer, the active one first, then each backing file: what `vda[3]`
   * means in blockcommit/blockpull. Use these, not the names: after an external snapshot libvirt
   * keeps the name a layer was opened by (`disk.0`, a symlink that now leads elsewhere).
   */
  readonly indices: readonly number[];
}

export function checkDomainName(name: string, what: string): string {
  if (!DOMAIN_NAME.test(name)) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: "${name}" is not a libvirt domain name`);
  }
  return name;
}

export function checkTarget(target: string, what: string): string {
  if (!TARGET.test(target)) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: "${target}" is not a disk target (like vda)`);
  }
  return target;
}

/** `virsh domstate`: "running", "paused", "shut off", ... */
export async function domainState(domain: string, opts: VirshOptions): Promise<string> {
  return (await virsh(['domstate', domain], opts)).trim();
}

/** Fails with DOMAIN_NOT_RUNNING (or DOMAIN_NOT_FOUND) unless the domain is running or paused. */
export async function requireRunning(domain: string, opts: VirshOptions): Promise<void> {
  const state = await domainState(domain, opts);
  if (state !== 'running' && state !== 'paused') {
    throw new StorageError('DOMAIN_NOT_RUNNING', `${opts.what}: domain ${domain} is not running (${state})`);
  }
}

/** True when libvirt knows the domain and it runs (a shut-off or unknown domain is offline). */
export async function isRunning(domain: string, opts: VirshOptions): Promise<boolean> {
  try {
    const state = await domainState(domain, opts);
    return state === 'running' || state === 'paused';
  } catch (err) {
    if (err instanceof StorageError && err.reason === 'DOMAIN_NOT_FOUND') return false;
    throw err;
  }
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (name) => name === 'disk',
});

type Node = Record<string, unknown>;

/**
 * One `virsh dumpxml`: whether the domain runs (a running or paused domain carries an `id`
 * attribute) and its file disks. Saves a `domstate` call on every live action.
 */
export async function liveDomain(
  domain: string,
  opts: VirshOptions,
): Promise<{ running: boolean; disks: DomainDisk[] }> {
  const xml = await virsh(['dumpxml', domain], opts);
  const id = /^\s*<domain\b[^>]*\bid='(-?\d+)'/.exec(xml)?.[1];
  return { running: id !== undefined && id !== '-1', disks: parseDomainDisks(xml, opts.what) };
}

function parseDomainDisks(xml: string, what: string): DomainDisk[] {
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw new StorageError('TOOL_FAILED', `${what}: virsh dumpxml printed XML that does not parse`, {
      cause: err,
    });
  }
  const devices = ((doc['domain'] as Node | undefined)?.['devices'] ?? {}) as Node;
  const disks = (devices['disk'] ?? []) as Node[];
  const out: DomainDisk[] = [];
  for (const d of disks) {
    const target = (d['target'] as Node | undefined)?.['@dev'];
    const source = (d['source'] as Node | undefined)?.['@file'];
    if (typeof target !== 'string' || typeof source !== 'string') continue;
    const format = (d['driver'] as Node | undefined)?.['@type'];
    const chain = backingLayers(d['backingStore']);
    const index = Number((d['source'] as Node | undefined)?.['@index'] ?? NaN);
    out.push({
      target,
      source,
      format: typeof format === 'string' ? format : 'raw',
      backing: chain.map((l) => l.file),
      indices: [index, ...chain.map((l) => l.index)],
    });
  }
  return out;
}

function backingLayers(node: unknown): Array<{ file: string; index: number }> {
  const layers: Array<{ file: string; index: number }> = [];
  let cur = node as Node | undefined;
  while (cur && typeof cur === 'object') {
    const file = (cur['source'] as Node | undefined)?.['@file'];
    if (typeof file !== 'string') break;
    layers.push({ file, index: Number(cur['@index'] ?? NaN) });
    cur = cur['backingStore'] as Node | undefined;
  }
  return layers;
}

/**
 * True while a block job (commit, pull, copy) runs on the disk. `--raw` prints `type=...` on stdout
 * (the human form goes to stderr) and nothing when there is no job.
 */
export async function hasBlockJob(domain: string, target: string, opts: VirshOptions): Promise<boolean> {
  const out = await virsh(['blockjob', domain, target, '--raw'], opts);
  return /\btype=/.test(out);
}

/** Refuses with BUSY when a block job already runs on the disk: libvirt allows one per disk. */
export async function requireNoBlockJob(domain: string, target: string, opts: VirshOptions): Promise<void> {
  if (await hasBlockJob(domain, target, opts)) {
    throw new StorageError(
      'BUSY',
      `${opts.what}: a block job is already running on ${target} of ${domain}; try again when it ends`,
    );
  }
}

/** True while a domain job (a backup) runs. */
export async function hasDomainJob(domain: string, opts: VirshOptions): Promise<boolean> {
  const out = await virsh(['domjobinfo', domain], opts);
  const type = /Job type:\s*(\S+)/.exec(out)?.[1];
  return type !== undefined && type !== 'None';
}
