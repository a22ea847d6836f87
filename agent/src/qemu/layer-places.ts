import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { parseTempName } from '../../../common/src/files/temp-name.js';
import { isInside } from '../paths/roots.js';

/** A configured root: oned's location and the real (symlink-free) directory that holds it here. */
export interface RealRoot {
  readonly location: string;
  readonly real: string;
}

/** What the chain walker needs from the agent's roots (agent/src/paths/roots.ts implements it). */
export interface ChainScope {
  /** This agent's name, for messages (host:path). */
  readonly host: string;
  realRootPlaces(): Promise<readonly RealRoot[]>;
}

/** An all-digit directory name: a datastore id, or a VM id inside a system datastore. */
const ID_NAME = /^\d+$/;
/** A snapshot directory's name: `disk.N.snap`, `<image>.snap`. */
const SNAP_DIR_NAME = /(^|\.)snap$/;
const HEX = /^[0-9a-f]+$/;

/** A snapshot directory, or one being built (`.<x>.snap.tmp-<hex>`, common/src/files/temp-name.ts). */
function isSnapDirName(name: string): boolean {
  if (SNAP_DIR_NAME.test(name)) return true;
  const temp = parseTempName(name);
  return temp?.tag === 'tmp' && /.\.snap$/.test(temp.base) && HEX.test(temp.rest);
}

/** Where a real path lies: its root, the datastore directory and the components below that. */
interface Place {
  root: RealRoot;
  dsDir: string;
  below: string[];
}

/**
 * The datastore directory of a path inside a root: the root itself when its location names one
 * datastore (`.../datastores/100`), else the root's first-level directory (`<DATASTORE_LOCATION>/<id>`).
 */
function placeOf(real: string, roots: readonly RealRoot[]): Place | undefined {
  const root = roots.find((r) => isInside(real, r.real));
  if (!root) return undefined;
  const parts = real === root.real ? [] : real.slice(root.real.length).split('/').filter(Boolean);
  const last = root.location.split('/').pop() ?? '';
  const dsDepth = ID_NAME.test(last) ? 0 : 1;
  const dsDir = [root.real.replace(/\/$/, ''), ...parts.slice(0, dsDepth)].join('/');
  return { root, dsDir, below: parts.slice(dsDepth) };
}

/** The VM directory (`<ds>/<vmid>`) a path lies in, or undefined (an image datastore entry). */
function vmDirOf(p: Place): string | undefined {
  const [first] = p.below;
  if (first === undefined || p.below.length < 2 || isSnapDirName(first)) return undefined;
  return `${p.dsDir}/${first}`;
}

/**
 * The places a chain read from `top` may lead to (docs: "Backing chains"): the VM directory of the
 * disk as it was named (and of its real file), with its `disk.N.snap/` chains, and image datastore
 * entries (a file directly in a datastore directory, or in its `<name>.snap/`). Never another VM's
 * directory, never outside the roots.
 */
export class LayerPlaces {
  private constructor(
    private readonly scope: ChainScope,
    private readonly roots: readonly RealRoot[],
    private readonly vmDirs: ReadonlySet<string>,
  ) {}

  static async of(scope: ChainScope, top: string): Promise<LayerPlaces> {
    const roots = await scope.realRootPlaces();
    const vmDirs = new Set<string>();
    for (const named of [await entryOf(top), await realpath(top).catch(() => undefined)]) {
      const place = named === undefined ? undefined : placeOf(named, roots);
      const vmDir = place && vmDirOf(place);
      if (vmDir) vmDirs.add(vmDir);
    }
    return new LayerPlaces(scope, roots, vmDirs);
  }

  /**
   * For an absolute backing name: the local file it names. A name under a local root is itself; a
   * name under one of oned's locations is translated to this host's directory (hosts may map a
   * datastore to different directories). Undefined when the name is under neither.
   */
  localFor(name: string): string | undefined {
    const local = this.roots.find((r) => isInside(name, r.real));
    if (local) return name;
    const byLocation = [...this.roots].sort((a, b) => b.location.length - a.location.length);
    const root = byLocation.find((r) => isInside(name, r.location));
    return root ? `${root.real}${name.slice(root.location.length)}` : undefined;
  }

  /** Refuses a layer (by its real path) that lies outside the roots or in another VM's directory. */
  check(real: string, shown: string, what: string): void {
    const place = placeOf(real, this.roots);
    if (!place) {
      throw new StorageError(
        'PATH_OUTSIDE_ROOTS',
        `${what}: ${shown} leads to ${this.scope.host}:${real}, outside the datastore roots`,
      );
    }
    const vmDir = vmDirOf(place);
    if (place.below.length === 0 || (vmDir !== undefined && !this.vmDirs.has(vmDir))) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${what}: ${shown} leads to ${this.scope.host}:${real}, which is neither in this disk's VM directory nor in an image datastore`,
      );
    }
  }
}

/** A path with its directory resolved and its last component kept (a disk.N link stays a link). */
async function entryOf(path: string): Promise<string | undefined> {
  const dir = await realpath(dirname(path)).catch(() => undefined);
  if (dir === undefined) return undefined;
  return `${dir === '/' ? '' : dir}/${path.slice(path.lastIndexOf('/') + 1)}`;
}
