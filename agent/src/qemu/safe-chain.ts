import { realpath } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import { type ChainScope, LayerPlaces } from './layer-places.js';
import { IMAGE_FORMATS, type ImageFormat, type QemuOptions, describe } from './qemu-img.js';
import { type Qcow2Layer, readQcow2Layer } from './qcow2-header.js';

/** One layer of a backing chain, read one header at a time. */
export interface ChainLayer {
  /** The file as qemu opens it (a relative backing name joined to its parent's directory). */
  filename: string;
  format: ImageFormat;
  /** Size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on disk. */
  actualSize: number;
  /** The backing name as stored in the image; absent for a standalone image. */
  backingFilename?: string;
  /** The file the backing name leads to (this host's path). */
  fullBackingFilename?: string;
  backingFormat?: ImageFormat;
}

export interface SafeChainOptions extends QemuOptions {
  what: string;
  /** The agent's roots: where layers may lie, and how oned's absolute names map to this host. */
  scope: ChainScope;
  /** Only the top layer (its backing name is still validated, never opened). */
  chain?: boolean;
  /** An extra refusal per layer (e.g. "inside this temporary directory"), run before it is read. */
  confine?: (file: string) => Promise<void>;
}

/** A chain longer than this is refused: OpenNebula's chains are one layer per snapshot. */
const MAX_LAYERS = 1000;
/** A backing name qemu would read as a protocol or an option string: `json:`, `nbd:`, `http://`... */
const PROTOCOL_NAME = /^[^/]*:/;
/** Characters a backing name may hold: the datastore path set (agent/src/paths/roots.ts). */
const SAFE_NAME = /^[A-Za-z0-9._@+=,:~/-]+$/;
/** How much of a refused backing name a message quotes. */
const QUOTED_NAME_LENGTH = 120;

/**
 * The backing chain of `path`, whose format oned knows (`format`), validated before anything opens
 * a layer: each layer is described alone (`qemu-img info -f FMT -U`, which opens no backing file),
 * its backing name checked (no `json:` or protocol name, no external data file, a backing format of
 * raw or qcow2 recorded in the header, a file inside the roots in this disk's VM directory or an
 * image datastore, no loop), and only then is the next layer read. A raw image ends the chain: with
 * `-f raw` qemu never parses a header, so a guest's bytes never name a file. Every qemu-img call
 * that then opens the chain gives `-f` with the format returned here and finds only these layers.
 */
export async function readChain(
  path: string,
  format: ImageFormat,
  opts: SafeChainOptions,
): Promise<ChainLayer[]> {
  const host = opts.scope.host;
  const places = await LayerPlaces.of(opts.scope, path);
  const layers: ChainLayer[] = [];
  const seen = new Set<string>();
  let file = path;
  let fileFormat = format;
  let namedBy = `${host}:${path}`;
  for (;;) {
    const real = await realpath(file).catch((err: unknown) => {
      throw asStorageError(err, opts.what, namedBy);
    });
    places.check(real, namedBy, opts.what);
    if (opts.confine) await opts.confine(file);
    if (seen.has(real)) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${opts.what}: the backing chain of ${host}:${path} refers to itself (${host}:${real})`,
      );
    }
    if (seen.size >= MAX_LAYERS) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${opts.what}: the backing chain of ${host}:${path} has over ${MAX_LAYERS} layers`,
      );
    }
    seen.add(real);
    // A qcow2 layer is described from its header by our own code (it is read for the checks
    // anyway); a raw one by `qemu-img info -f raw`.
    const layer =
      fileFormat === 'qcow2'
        ? layerOf(file, fileFormat, await readQcow2Layer(real, `${opts.what}: ${host}:${file}`), opts)
        : await describeLayer(file, fileFormat, opts);
    layers.push(layer);
    const name = layer.backingFilename;
    if (name === undefined) return layers;
    const shown = `${host}:${file}`;
    const next = nextLayer(name, file, layer.backingFormat, places, `${opts.what}: ${shown}`);
    layer.fullBackingFilename = next.file;
    if (opts.chain === false) return layers;
    if (next.literal !== undefined) await sameFile(next.literal, next.file, `${opts.what}: ${shown}`);
    file = next.file;
    fileFormat = next.format;
    namedBy = `backing file ${quoteName(name)} of ${shown}`;
  }
}

/**
 * Checks a layer's backing name and says which file it leads to: the name joined to the layer's
 * directory as qemu joins it (relative), or itself / translated from oned's location (absolute).
 * `literal` is the absolute name qemu itself would open when it differs from the translated file.
 */
function nextLayer(
  name: string,
  file: string,
  backingFormat: ImageFormat | undefined,
  places: LayerPlaces,
  what: string,
): { file: string; format: ImageFormat; literal?: string } {
  const refuse = (why: string, reason: 'BAD_LAYOUT' | 'PATH_OUTSIDE_ROOTS' = 'BAD_LAYOUT'): never => {
    throw new StorageError(reason, `${what} names backing file ${quoteName(name)}: ${why}`);
  };
  if (name.startsWith('json:')) refuse('json: backing names are refused (they hold qemu options)');
  if (PROTOCOL_NAME.test(name) || name.includes('://')) {
    refuse('protocol backing names (nbd, http, ...) are refused: a backing file is a local file');
  }
  if (!SAFE_NAME.test(name)) refuse('it holds characters outside [A-Za-z0-9._@+=,:~/-]');
  if (backingFormat === undefined) {
    refuse(
      'the image records no backing format, so qemu would guess it; record it with qemu-img rebase -u -F raw|qcow2',
    );
  }
  const format = backingFormat as ImageFormat;
  if (!name.startsWith('/')) return { file: `${file.slice(0, file.lastIndexOf('/') + 1)}${name}`, format };
  const local = places.localFor(name);
  if (local === undefined) refuse('it is outside the datastore roots', 'PATH_OUTSIDE_ROOTS');
  return { file: local as string, format, ...(local === name ? {} : { literal: name }) };
}

/**
 * An oned-view absolute backing name translated to this host's directory: qemu itself opens the
 * literal name, so that name must not exist here as anything but the same file.
 */
async function sameFile(literal: string, local: string, what: string): Promise<void> {
  const realLiteral = await realpath(literal).catch(() => undefined);
  if (realLiteral === undefined) return;
  const realLocal = await realpath(local).catch(() => undefined);
  if (realLiteral !== realLocal) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what}: backing file ${literal} is, on this host, another file than ${local}`,
    );
  }
}

/** One layer's header (`qemu-img info`, qemu-img.ts describe); no backing file is opened. */
async function describeLayer(file: string, format: ImageFormat, opts: SafeChainOptions): Promise<ChainLayer> {
  const o = await describe(file, format, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    what: opts.what,
  });
  if (o.dataFile !== undefined) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${opts.what}: ${opts.scope.host}:${file} names an external data file; refused`,
    );
  }
  return layerOf(
    file,
    format,
    {
      virtualSize: o.virtualSize,
      actualSize: o.actualSize,
      ...(o.backingFilename !== undefined ? { name: o.backingFilename } : {}),
      ...(o.backingFormat !== undefined ? { format: o.backingFormat } : {}),
    },
    opts,
  );
}

/** A layer from what its header says; a backing format other than raw or qcow2 is refused. */
function layerOf(file: string, format: ImageFormat, o: Qcow2Layer, opts: SafeChainOptions): ChainLayer {
  const layer: ChainLayer = { filename: file, format, virtualSize: o.virtualSize, actualSize: o.actualSize };
  if (o.name !== undefined) layer.backingFilename = o.name;
  if (o.format !== undefined) {
    const known = IMAGE_FORMATS.find((f) => f === o.format);
    if (known === undefined) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${opts.what}: ${opts.scope.host}:${file} records backing format ${quoteName(o.format)}; only raw and qcow2 are accepted`,
      );
    }
    layer.backingFormat = known;
  }
  return layer;
}

/** A name as a message can show it: JSON-quoted (one line), length capped. */
function quoteName(name: string): string {
  return JSON.stringify(name.length > QUOTED_NAME_LENGTH ? `${name.slice(0, QUOTED_NAME_LENGTH)}...` : name);
}
