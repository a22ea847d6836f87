import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { CopyLocal } from '../rpc/context.js';

/**
 * Modes of the files and directories inside the ISO (Rock Ridge), as OpenNebula's context ISOs
 * have them under oneadmin's umask 022: readable by the guest's users. Given to genisoimage, so
 * the staged copies themselves stay private to the agent (a context may carry passwords).
 */
export const ISO_FILE_MODE = 0o644;
export const ISO_DIR_MODE = 0o755;
/** The staging directory and what is written into it: the agent's alone until it is removed. */
const STAGING_DIR_MODE = 0o700;
const STAGED_FILE_MODE = 0o600;

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
  await mkdir(staging, { mode: STAGING_DIR_MODE });
  for (const entry of spec.entries) {
    const target = join(staging, entry.name);
    if ('file' in entry) await spec.copy(entry.file, target, { sparse: true, ...opts });
    else await writeFile(target, entry.content, { flag: 'wx', mode: STAGED_FILE_MODE });
  }
  await runTool(
    'genisoimage',
    ['-quiet', '-input-charset', 'utf-8', '-o', dest, '-V', spec.label, '-J', '-R'].concat([
      '-file-mode',
      octal(ISO_FILE_MODE),
      '-dir-mode',
      octal(ISO_DIR_MODE),
      staging,
    ]),
    opts,
  );
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}
