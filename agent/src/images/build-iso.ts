import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { CopyLocal } from '../rpc/context.js';

/** Mode of the files put into the ISO (Rock Ridge keeps it): readable by the guest's users. */
const ISO_FILE_MODE = 0o644;

/** One file of the ISO: a local file to copy, or bytes to write. */
export type IsoEntry =
  { readonly name: string; readonly file: string } | { readonly name: string; readonly content: Uint8Array };

export interface IsoSpec {
  label: string;
  entries: readonly IsoEntry[];
  /** Hole-keeping same-host copy (the agent's copyLocal). */
  copy: CopyLocal;
  signal?: AbortSignal;
  what: string;
}

/**
 * Stages the entries in `staging` (a new directory the caller removes) and writes an ISO 9660
 * image with Joliet and Rock Ridge names to `dest`, as OpenNebula's context script does with
 * `genisoimage -o F -V LABEL -J -R DIR`.
 */
export async function buildIso(dest: string, staging: string, spec: IsoSpec): Promise<void> {
  const opts = { what: spec.what, ...(spec.signal ? { signal: spec.signal } : {}) };
  await mkdir(staging);
  for (const entry of spec.entries) {
    const target = join(staging, entry.name);
    if ('file' in entry) await spec.copy(entry.file, target, { sparse: true, ...opts });
    else await writeFile(target, entry.content, { flag: 'wx', mode: ISO_FILE_MODE });
  }
  await runTool(
    'genisoimage',
    ['-quiet', '-input-charset', 'utf-8', '-o', dest, '-V', spec.label, '-J', '-R', staging],
    opts,
  );
}
