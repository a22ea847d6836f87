import { realpath } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { RootConfig } from '../config.js';

/** PATH_MAX on Linux: oned never sends longer paths, so anything longer is garbage or an attack. */
export const MAX_PATH_LENGTH = 4096;
/**
 * Characters a datastore path may hold: what OpenNebula itself generates (digits, hashes, "disk.N",
 * ".snap") plus a few harmless extras. Everything else (spaces, quotes, "$", "`", ";", "|", "&",
 * "*", "?", newlines...) is refused: these paths once went through shell strings, and a path that
 * needs them is a bug or an injection attempt.
 */
const UNSAFE_CHARACTER = /[^A-Za-z0-9._@+=,:~/-]/;
const ALLOWED_DESCRIPTION = 'letters, digits and . _ @ + = , : ~ / -';
/** How much of an over-long path to quote in a message. */
const QUOTED_PREFIX_LENGTH = 80;
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Maps oned-view paths (under oned's DATASTORE_LOCATION) to this node's directories and keeps every
 * path the agent touches inside its configured roots, even through symlinks planted in a datastore.
 */
export class Roots {
  /** Longest location first, so /var/lib/one/datastores/100 wins over /var/lib/one/datastores. */
  private readonly byLocation: readonly RootConfig[];
  /** The oned-view locations served, in configured order. */
  readonly locations: readonly string[];

  constructor(
    /** This agent's name, as messages show it (host:path). */
    readonly host: string,
    roots: readonly RootConfig[],
  ) {
    this.locations = roots.map((r) => r.location);
    this.byLocation = roots
      .map((r) => ({ location: r.location, path: tidy(r.path) }))
      .sort((a, b) => b.location.length - a.location.length);
  }

  /**
   * Checks the characters and shape of an oned-view path and returns it normalised as
   * OpenNebula's arg_path does (repeated slashes collapsed, trailing slash removed).
   * Throws UNSAFE_PATH naming the field, this host and the path.
   */
  normalize(onedPath: string, field: string): string {
    const refuse = (why: string): never => {
      throw new StorageError('UNSAFE_PATH', `${field} ${this.host}:${quote(onedPath)}: unsafe path: ${why}`);
    };
    if (onedPath.length > MAX_PATH_LENGTH) refuse(`longer than ${MAX_PATH_LENGTH} characters`);
    if (onedPath.includes('\0')) refuse('contains a NUL character');
    const bad = UNSAFE_CHARACTER.exec(onedPath);
    if (bad) refuse(`contains ${JSON.stringify(bad[0])}; only ${ALLOWED_DESCRIPTION} are allowed`);
    if (!onedPath.startsWith('/')) refuse('must be an absolute path');
    const parts = onedPath.split('/').filter((p) => p !== '');
    if (parts.some((p) => p === '.' || p === '..')) refuse('must not contain "." or ".." components');
    return `/${parts.join('/')}`;
  }

  /**
   * Returns the local path for an oned-view path, or throws UNSAFE_PATH (bad characters or shape)
   * or PATH_OUTSIDE_ROOTS (no configured location matches, or a symlink in an existing ancestor
   * leads outside every root). The final component is not followed: Delete removes a symlink, not
   * its target, and Stat describes the link itself.
   */
  async resolve(onedPath: string, field: string): Promise<string> {
    const normalized = this.normalize(onedPath, field);
    const root = this.rootFor(normalized);
    if (!root) {
      throw new StorageError(
        'PATH_OUTSIDE_ROOTS',
        `${field} ${this.host}:${normalized}: outside the datastore roots; this agent serves ${this.locations.join(', ')}`,
      );
    }
    const rest = normalized.slice(root.location.length).replace(/^\//, '');
    const realRoot = await this.realRoot(root, normalized, field);
    if (rest === '') return realRoot;
    const local = joinPath(root.path, rest);
    const { real, tail } = await this.deepestExisting(dirname(local), root.path, normalized, field);
    await this.confine(real, normalized, field);
    return joinPath(real, ...tail, basename(local));
  }

  /**
   * Like resolve, and when the path exists also follows it to the end (realpath) and checks that
   * target: for calls that read or write *through* a symlink (Resize, Copy's source), where a
   * `disk.0 -> /etc/shadow` planted in a datastore must not be followed.
   */
  async resolveTarget(onedPath: string, field: string): Promise<string> {
    const local = await this.resolve(onedPath, field);
    let real: string;
    try {
      real = await realpath(local);
    } catch (err) {
      if (NOT_THERE.has((err as NodeJS.ErrnoException).code ?? '')) return local;
      throw asStorageError(err, `${field}`, `${this.host}:${onedPath}`);
    }
    await this.confine(real, this.normalize(onedPath, field), field);
    return real;
  }

  /**
   * Refuses a local path this agent did not get from resolve (a backing file named inside an image,
   * for one) unless its realpath lies inside a root: qemu-img follows backing names anywhere, and a
   * planted `backing file: /etc/shadow` must not be read into a datastore. `label` starts the message.
   */
  async confineLocal(local: string, label: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(local);
    } catch (err) {
      throw asStorageError(err, label, `${this.host}:${local}`);
    }
    const realRoots = await Promise.all(this.byLocation.map((r) => realpath(r.path).catch(() => undefined)));
    if (realRoots.some((r) => r !== undefined && isInside(real, r))) return;
    throw new StorageError(
      'PATH_OUTSIDE_ROOTS',
      `${label}: ${this.host}:${real} is outside the datastore roots`,
    );
  }

  /** The real paths (their own symlinks resolved) of the configured roots that exist. */
  async realRoots(): Promise<string[]> {
    return (await this.realRootPlaces()).map((r) => r.real);
  }

  /**
   * Every root with its real directory (roots that do not exist here left out), for the backing
   * chain checks (agent/src/qemu/layer-places.ts), which map oned's absolute names and places.
   */
  async realRootPlaces(): Promise<Array<{ location: string; real: string }>> {
    const out: Array<{ location: string; real: string }> = [];
    for (const r of this.byLocation) {
      const real = await realpath(r.path).catch(() => undefined);
      if (real !== undefined) out.push({ location: r.location, real });
    }
    return out;
  }

  /** True when `local` (as resolve returned it) is one of the roots themselves. */
  async isRoot(local: string): Promise<boolean> {
    for (const r of this.byLocation) {
      const real = await realpath(r.path).catch(() => r.path);
      if (real === local) return true;
    }
    return false;
  }

  /**
   * The configured root a local path lies in (the most specific one, by real path), or undefined.
   * Two paths in the same root keep their relative position on every host, whatever directory
   * each host maps the location to: what makes a relative stored name safe (paths/stored-name.ts).
   */
  async rootOfLocal(local: string): Promise<RootConfig | undefined> {
    let best: { root: RootConfig; real: string } | undefined;
    for (const r of this.byLocation) {
      const real = await realpath(r.path).catch(() => undefined);
      if (real === undefined || !isInside(local, real)) continue;
      if (!best || real.length > best.real.length) best = { root: r, real };
    }
    return best?.root;
  }

  /** The oned-view path of a local path inside a root (its real path), or undefined outside them. */
  async onedPathOf(local: string): Promise<string | undefined> {
    const root = await this.rootOfLocal(local);
    if (!root) return undefined;
    const real = await realpath(root.path);
    const rest = local.slice(real.length).replace(/^\//, '');
    return rest === '' ? root.location : `${root.location.replace(/\/$/, '')}/${rest}`;
  }

  /**
   * Where an absolute name stored in metadata leads on this host: a name under a configured
   * location (oned's view, as this project and OpenNebula's own drivers write them) becomes this
   * host's path for it; any other name is returned unchanged (confinement checks it later).
   */
  localOfStored(name: string): string {
    const root = this.byLocation.find((r) => isInside(name, r.location));
    if (!root) return name;
    const rest = name.slice(root.location.length).replace(/^\//, '');
    return rest === '' ? root.path : joinPath(root.path, rest);
  }

  private rootFor(normalized: string): RootConfig | undefined {
    return this.byLocation.find((r) => isInside(normalized, r.location));
  }

  private async realRoot(root: RootConfig, normalized: string, field: string): Promise<string> {
    try {
      return await realpath(root.path);
    } catch (err) {
      if (NOT_THERE.has((err as NodeJS.ErrnoException).code ?? '')) {
        throw new StorageError(
          'NOT_FOUND',
          `${field} ${this.host}:${normalized}: the datastore root ${root.path} (for ${root.location}) does not exist on this host`,
        );
      }
      throw asStorageError(err, field, `${this.host}:${normalized}`);
    }
  }

  /** realpath of the deepest existing ancestor of `dir` (stopping at the root), and the components below it. */
  private async deepestExisting(
    dir: string,
    rootPath: string,
    normalized: string,
    field: string,
  ): Promise<{ real: string; tail: string[] }> {
    const tail: string[] = [];
    let current = dir;
    for (;;) {
      try {
        return { real: await realpath(current), tail };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        // The root itself exists (realRoot checked it); a race that removes it ends here.
        if (!NOT_THERE.has(code) || current === rootPath || current === '/') {
          throw asStorageError(err, field, `${this.host}:${normalized}`);
        }
        tail.unshift(basename(current));
        current = dirname(current);
      }
    }
  }

  /** Refuses a resolved location that is not inside any root (after the roots' own symlinks). */
  private async confine(real: string, normalized: string, field: string): Promise<void> {
    const realRoots = await Promise.all(this.byLocation.map((r) => realpath(r.path).catch(() => undefined)));
    if (realRoots.some((r) => r !== undefined && isInside(real, r))) return;
    throw new StorageError(
      'PATH_OUTSIDE_ROOTS',
      `${field} ${this.host}:${normalized}: leads through a symlink to ${real}, outside the datastore roots`,
    );
  }
}

/** `child` is `parent` or below it, by whole components (/a/b2 is not inside /a/b). */
export function isInside(child: string, parent: string): boolean {
  if (parent === '/') return child.startsWith('/');
  return child === parent || child.startsWith(`${parent}/`);
}

function joinPath(base: string, ...parts: string[]): string {
  return [base.replace(/\/$/, ''), ...parts].join('/');
}

/** Collapses repeated slashes and drops a trailing one ("/data//ds/" → "/data/ds"). */
function tidy(path: string): string {
  return path.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1');
}

/** A path as it can be shown in a one-line message: control characters escaped, length capped. */
function quote(path: string): string {
  const shown = path.length > QUOTED_PREFIX_LENGTH ? `${path.slice(0, QUOTED_PREFIX_LENGTH)}...` : path;
  return JSON.stringify(shown).slice(1, -1);
}
