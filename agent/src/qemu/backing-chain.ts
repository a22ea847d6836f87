import { StorageError } from '../../../common/src/errors.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { QEMU_IMG, type QemuOptions } from './qemu-img.js';

/** One layer of `qemu-img info --backing-chain`, typed. */
export interface ChainLayer {
  /** The file as qemu-img opened it (a relative backing name joined to its parent's directory). */
  filename: string;
  format: string;
  virtualSize: number;
  actualSize: number;
  /** The backing name as stored in the image; absent for a standalone image. */
  backingFilename?: string;
  /** The backing name resolved against the directory of `filename`. */
  fullBackingFilename?: string;
  backingFormat?: string;
}

/** qemu-img's message when a chain names one of its own layers again. */
const LOOP_MESSAGE = /creates an infinite loop/;

/**
 * `qemu-img info -U --output=json --backing-chain PATH`: the image first, then its backing file,
 * and so on. A chain that loops is BAD_LAYOUT (qemu-img detects it here, whereas `create -b` on such
 * a chain spins forever, so callers read the chain before they build on it); a missing backing file
 * is TOOL_FAILED with qemu-img's message. Without `chain`, only PATH itself is described.
 */
export async function backingChain(
  path: string,
  opts: QemuOptions & { chain?: boolean } = {},
): Promise<ChainLayer[]> {
  const args = ['info', '-U', '--output=json', ...(opts.chain === false ? [] : ['--backing-chain']), path];
  let stdout: string;
  try {
    ({ stdout } = await runTool(QEMU_IMG, args, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.what ? { what: opts.what } : {}),
    }));
  } catch (err) {
    if (err instanceof StorageError && LOOP_MESSAGE.test(err.message)) {
      throw new StorageError(
        'BAD_LAYOUT',
        `${opts.what ?? path}: the backing chain of ${path} refers to itself`,
        { cause: err },
      );
    }
    throw err;
  }
  return parseBackingChain(stdout, opts.what ?? path);
}

/** Parses the JSON of `qemu-img info --output=json [--backing-chain]` (an array, or one object). */
export function parseBackingChain(stdout: string, what: string): ChainLayer[] {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new StorageError('TOOL_FAILED', `${what}: qemu-img info printed something that is not JSON`);
  }
  const items = Array.isArray(json) ? (json as unknown[]) : [json];
  if (items.length === 0) throw new StorageError('TOOL_FAILED', `${what}: qemu-img info described no image`);
  return items.map((item) => parseLayer(item, what));
}

function parseLayer(item: unknown, what: string): ChainLayer {
  const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
  const filename = o['filename'];
  const format = o['format'];
  const virtualSize = o['virtual-size'];
  if (typeof filename !== 'string' || typeof format !== 'string' || typeof virtualSize !== 'number') {
    throw new StorageError(
      'TOOL_FAILED',
      `${what}: qemu-img info did not report a file name, a format and a size`,
    );
  }
  const actualSize = o['actual-size'];
  const layer: ChainLayer = {
    filename,
    format,
    virtualSize,
    actualSize: typeof actualSize === 'number' ? actualSize : 0,
  };
  const backing = o['backing-filename'];
  const full = o['full-backing-filename'];
  const backingFormat = o['backing-filename-format'];
  if (typeof backing === 'string' && backing !== '') layer.backingFilename = backing;
  if (typeof full === 'string' && full !== '') layer.fullBackingFilename = full;
  if (typeof backingFormat === 'string' && backingFormat !== '') layer.backingFormat = backingFormat;
  return layer;
}
