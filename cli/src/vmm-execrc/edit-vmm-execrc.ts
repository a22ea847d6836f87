// Edits OpenNebula's /etc/one/vmm_exec/vmm_execrc in place of the operator (the Ansible front-end
// role runs it): the KVM driver sends a running VM's disk snapshot to the TM only for the VMM-TM
// pairs in LIVE_DISK_SNAPSHOTS (docs/oned-conf.md#live-disk-snapshots-etconevmm_execvmm_execrc),
// so `apply` adds ours to that space-separated list and `remove` takes exactly them out again. Both
// are idempotent. The file is sourced by a shell: a value that is not a plain word list (a `$`, a
// backquote, an escape) is refused rather than guessed at.
import { StorageError } from '../../../common/src/errors.js';
import { ourDriverNames } from '../oned-conf/edit-oned-conf.js';

/** The VMM names OpenNebula's KVM driver runs under (`kvm`, and `qemu` for hosts without KVM). */
const VMMS = ['kvm', 'qemu'];
const VARIABLE = 'LIVE_DISK_SNAPSHOTS';
/** Marks a line we appended because the file had none, so `remove` can take the whole line out. */
export const APPENDED_MARK = '# one-storage vmm-execrc --apply';

/** Our VMM-TM pairs: every VMM with every TM of ours (kvm-grpc, kvm-grpc_qcow2, qemu-grpc, ...). */
export function ourLiveSnapshotPairs(): string[] {
  return VMMS.flatMap((vmm) => ourDriverNames().tm.map((tm) => `${vmm}-${tm}`));
}

export type VmmExecrcEdit = 'apply' | 'remove';

/** The edited text; equal to `text` when nothing had to change. `file` only names it in errors. */
export function editVmmExecrc(text: string, edit: VmmExecrcEdit, file: string): string {
  const pairs = ourLiveSnapshotPairs();
  const lines = text.split('\n');
  // The shell keeps the last assignment: that is the one to edit.
  let at = -1;
  for (let i = 0; i < lines.length; i++) {
    if (new RegExp(`^\\s*(export\\s+)?${VARIABLE}=`).test(lines[i] ?? '')) at = i;
  }
  if (at < 0) {
    if (edit === 'remove') return text;
    const body = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
    return `${body}${VARIABLE}="${pairs.join(' ')}" ${APPENDED_MARK}\n`;
  }
  const line = lines[at] ?? '';
  const m = new RegExp(`^(\\s*(?:export\\s+)?${VARIABLE}=)(?:"([^"]*)"|'([^']*)'|([^\\s"'#;]*))(.*)$`).exec(
    line,
  );
  const value = m ? (m[2] ?? m[3] ?? m[4] ?? '') : undefined;
  if (!m || value === undefined || /[$`\\]/.test(value) || !/^\s*(#.*)?$/.test(m[5] ?? '')) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `vmm_execrc ${file}: line ${at + 1} does not set ${VARIABLE} to a plain quoted list; add ${pairs.join(' ')} by hand`,
    );
  }
  const list = value.split(/\s+/).filter((w) => w.length > 0);
  const next =
    edit === 'apply'
      ? [...list, ...pairs.filter((p) => !list.includes(p))]
      : list.filter((p) => !pairs.includes(p));
  if (next.join(' ') === list.join(' ')) return text;
  const trailer = m[5] ?? '';
  if (next.length === 0 && trailer.includes(APPENDED_MARK)) {
    lines.splice(at, 1);
    return lines.join('\n');
  }
  lines[at] = `${m[1] ?? ''}"${next.join(' ')}"${trailer}`;
  return lines.join('\n');
}
