import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { type Extent, extentBytes } from '../qemu/image-map.js';
import type { DigestAlgorithm } from './digest-algorithms.js';
import { dataExtents } from './extents.js';
import { treeLinkProblem } from './tree-links.js';
import {
  descriptorPath,
  openVerifiedDirectory,
  openVerifiedFile,
  type FileIdentity,
} from './verified-open.js';

export type EntryKind = 'dir' | 'file' | 'symlink';

/**
 * One entry of what a ticket sends. `path` is relative to the sent root, "/"-separated; the root
 * itself is the first entry with path "". Parents always come before their children.
 */
export interface ManifestEntry {
  path: string;
  kind: EntryKind;
  /**
   * Permission bits at the sender (setuid/setgid dropped), for information: the receiver gives
   * its files and directories the agent's own modes (agent/src/files/modes.ts), never these.
   */
  mode: number;
  /** Apparent size of a file; 0 for the others. */
  size: number;
  mtimeMs: number;
  /** Symlink text, copied verbatim: relative and inside the tree (tree-links.ts), never followed. */
  link?: string;
  /** Data runs of a file, in order; the bytes of all runs make up the file's data stream. */
  extents?: Extent[];
}

export interface Manifest {
  version: 1;
  entries: ManifestEntry[];
  /**
   * On the wire only: the digest of each file's data stream the sender sends in FILE_DONE
   * (digest-algorithms.ts); absent from a sender that predates the choice (SHA-256 then).
   */
  digest?: DigestAlgorithm;
}

/** Modes kept on the copy: rwx for all, and sticky; never setuid/setgid from another host. */
const MODE_MASK = 0o1777;
/** Bounds that only a broken or hostile sender would reach. */
const MAX_ENTRIES = 100_000;
const MAX_PATH_CHARS = 4096;
/** Files mapped at once: each map is one short qemu-img process. */
const MAP_CONCURRENCY = 4;

export function dataBytesOf(manifest: Manifest): number {
  let total = 0;
  for (const e of manifest.entries) if (e.extents) total += extentBytes(e.extents);
  return total;
}

export function rootKind(manifest: Manifest): EntryKind {
  return (manifest.entries[0] as ManifestEntry).kind;
}

/** What OpenSend keeps of a source: the manifest, and each file's identity for the pull. */
export interface SendSource {
  manifest: Manifest;
  /** Device and inode of each file entry, by its manifest path. */
  files: ReadonlyMap<string, FileIdentity>;
}

/**
 * Describes the file or directory tree at `root` (a real path, confined by the caller: no symlink
 * in any component). Symlinks inside the tree are recorded, not followed, so the walk never leaves
 * the tree, and must be relative and stay inside it (tree-links.ts); devices, sockets and FIFOs are
 * refused: nothing in a datastore should be one. Each file is opened once (openVerifiedFile: its
 * real path is the one walked) to record its device and inode and to map its extents through the
 * descriptor, so a path swapped during the walk is neither mapped nor later served.
 */
export async function buildManifest(root: string, signal?: AbortSignal): Promise<SendSource> {
  const entries: ManifestEntry[] = [];
  const files: ManifestEntry[] = [];
  const identities = new Map<string, FileIdentity>();
  const visit = async (rel: string, st: Stats, link?: string): Promise<void> => {
    const local = rel === '' ? root : join(root, rel);
    const base = { path: rel, mode: st.mode & MODE_MASK, mtimeMs: Math.trunc(st.mtimeMs) };
    if (st.isSymbolicLink()) {
      entries.push({ ...base, kind: 'symlink', size: 0, link: link ?? '' });
    } else if (st.isFile()) {
      const entry: ManifestEntry = { ...base, kind: 'file', size: st.size };
      entries.push(entry);
      files.push(entry);
    } else if (st.isDirectory()) {
      entries.push({ ...base, kind: 'dir', size: 0 });
      for (const child of await listDirectory(local)) {
        await visit(rel === '' ? child.name : `${rel}/${child.name}`, child.st, child.link);
        if (entries.length > MAX_ENTRIES) {
          throw new StorageError('INVALID_ARGUMENT', `send ${root}: more than ${MAX_ENTRIES} entries`);
        }
      }
    } else {
      throw new StorageError('INVALID_ARGUMENT', `send ${local}: not a file, directory or symlink`);
    }
  };
  try {
    const top = await lstat(root);
    if (top.isSymbolicLink())
      throw new StorageError('INVALID_ARGUMENT', `send ${root}: the root is a symlink`);
    await visit('', top);
    const links = treeLinkProblem(entries);
    if (links) throw new StorageError('UNSAFE_PATH', `send ${root}: ${links}`);
    for (let i = 0; i < files.length; i += MAP_CONCURRENCY) {
      await Promise.all(
        files.slice(i, i + MAP_CONCURRENCY).map(async (f) => {
          const path = f.path === '' ? root : join(root, f.path);
          const { fh, identity, size } = await openVerifiedFile(path, `send ${path}`);
          try {
            f.size = size;
            f.extents = await dataExtents(fh.fd, path, size, signal);
          } finally {
            await fh.close();
          }
          identities.set(f.path, identity);
        }),
      );
    }
  } catch (err) {
    throw asStorageError(err, 'send', root);
  }
  return { manifest: { version: 1, entries }, files: identities };
}

/**
 * The entries of the directory at `path` (a real path), sorted, each lstat-ed (and a symlink's text
 * read) through one descriptor whose real path was checked: a directory swapped for a symlink
 * during the walk is refused rather than listed.
 */
async function listDirectory(path: string): Promise<{ name: string; st: Stats; link?: string }[]> {
  const dir = await openVerifiedDirectory(path, `send ${path}`);
  try {
    const at = descriptorPath(dir);
    const out: { name: string; st: Stats; link?: string }[] = [];
    for (const name of (await readdir(at)).sort()) {
      const st = await lstat(join(at, name));
      out.push(st.isSymbolicLink() ? { name, st, link: await readlink(join(at, name)) } : { name, st });
    }
    return out;
  } finally {
    await dir.close();
  }
}

const KINDS = new Set<string>(['dir', 'file', 'symlink']);

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Checks a manifest received from another agent before anything is created from it. Names must be
 * plain relative paths (no "", ".", ".." components, no leading "/") whose parent is a directory
 * of the same manifest: otherwise a symlink entry followed by "link/x" would write through the link,
 * outside the destination. Returns an error description, or undefined when the manifest is sound.
 */
export function manifestProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const m = value as Partial<Manifest>;
  if (m.version !== 1) return `unsupported manifest version ${String(m.version)}`;
  if (!Array.isArray(m.entries) || m.entries.length === 0) return 'no entries';
  if (m.entries.length > MAX_ENTRIES) return `more than ${MAX_ENTRIES} entries`;
  const dirs = new Set<string>();
  const seen = new Set<string>();
  for (const [i, raw] of m.entries.entries()) {
    const e = raw as Partial<ManifestEntry>;
    const where = `entry ${i}`;
    if (typeof e.path !== 'string' || e.path.length > MAX_PATH_CHARS || e.path.includes('\0')) {
      return `${where}: bad path`;
    }
    if (i === 0 ? e.path !== '' : !isSafeRelative(e.path)) return `${where}: unsafe path "${e.path}"`;
    if (seen.has(e.path)) return `${where}: duplicate path "${e.path}"`;
    seen.add(e.path);
    if (i > 0) {
      const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
      if (!dirs.has(parent)) return `${where}: parent of "${e.path}" is not a directory listed before it`;
    }
    if (typeof e.kind !== 'string' || !KINDS.has(e.kind)) return `${where}: bad kind`;
    if (!isCount(e.mode) || e.mode > MODE_MASK) return `${where}: bad mode`;
    if (!isCount(e.size) || !isCount(e.mtimeMs)) return `${where}: bad size or mtime`;
    if (e.kind === 'dir') dirs.add(e.path);
    // A sender sends what a link at its source points to, never the link: a root symlink would
    // become a link on this host to whatever it names here.
    if (i === 0 && e.kind === 'symlink') return `${where}: the root is a symlink`;
    if (e.kind === 'symlink') {
      if (
        typeof e.link !== 'string' ||
        e.link === '' ||
        e.link.includes('\0') ||
        e.link.length > MAX_PATH_CHARS
      ) {
        return `${where}: bad symlink text`;
      }
    }
    if (e.kind === 'file') {
      const problem = extentsProblem(e.extents, e.size);
      if (problem) return `${where}: ${problem}`;
    } else if (e.extents !== undefined) return `${where}: extents on a ${e.kind}`;
  }
  return treeLinkProblem(m.entries);
}

function isSafeRelative(path: string): boolean {
  if (path === '' || path.startsWith('/')) return false;
  return path.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

function extentsProblem(extents: unknown, size: number): string | undefined {
  if (!Array.isArray(extents)) return 'missing extents';
  let end = 0;
  for (const ex of extents as unknown[]) {
    if (!Array.isArray(ex) || ex.length !== 2) return 'bad extent';
    const [offset, length] = ex as unknown[];
    if (!isCount(offset) || !isCount(length) || length === 0) return 'bad extent';
    if (offset < end || offset + length > size) return 'extents overlap or pass the end of the file';
    end = offset + length;
  }
  return undefined;
}
