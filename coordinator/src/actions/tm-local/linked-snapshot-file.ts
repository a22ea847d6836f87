import { basename, dirname } from '../host-path.js';
import { FileKind } from '../transfer.js';

/**
 * The last name of the file `path` runs on when it is a symlink into its own snap dir,
 * `<basename(path)>.snap/<name>` (relative or absolute): a VM's `disk.N -> disk.N.snap/K`, or an
 * image's `SOURCE -> <hash>.snap/K` (OpenNebula's tm/local layout,
 * docs/image-datastore.md#layouts). Undefined for anything else.
 */
export function linkedSnapshotFile(
  path: string,
  st: { kind: FileKind; linkTarget: string },
): string | undefined {
  if (st.kind !== FileKind.FILE_KIND_SYMLINK) return undefined;
  const dir = basename(dirname(st.linkTarget));
  return dir === `${basename(path)}.snap` ? basename(st.linkTarget) : undefined;
}
