// Edits an oned.conf in place of the operator (the Ansible front-end role runs it): adds our driver
// names to the -d lists of TM_MAD and DATASTORE_MAD (and the shared-mode TM to DATASTORE_MAD's -s
// list) and our TM_MAD_CONF / DS_MAD_CONF blocks in one marked section; `remove` undoes exactly
// that. Both are idempotent: a second run returns the text unchanged. The blocks and the names come
// from ONED_CONF_SNIPPET (what `one-storage oned-conf` prints), so they are written once.
import { StorageError } from '../../../common/src/errors.js';
import { ONED_CONF_SNIPPET } from './oned-conf.js';

export const SECTION_BEGIN =
  '# BEGIN one-storage drivers (one-storage oned-conf --apply; --remove takes it out)';
export const SECTION_END = '# END one-storage drivers';

interface MadConfBlock {
  kind: 'TM_MAD_CONF' | 'DS_MAD_CONF';
  name: string;
  shared: boolean;
  /** The block with the comment lines right above it. */
  text: string;
}

/** The TM_MAD_CONF / DS_MAD_CONF blocks of the snippet, each with its comment. */
export function snippetMadConfBlocks(): MadConfBlock[] {
  const blocks: MadConfBlock[] = [];
  for (const chunk of ONED_CONF_SNIPPET.split(/\n\s*\n/)) {
    const m = /^(TM_MAD_CONF|DS_MAD_CONF)\s*=\s*\[[\s\S]*?NAME\s*=\s*"([^"]+)"[\s\S]*?^\]/m.exec(chunk);
    if (!m) continue;
    blocks.push({
      kind: m[1] === 'TM_MAD_CONF' ? 'TM_MAD_CONF' : 'DS_MAD_CONF',
      name: m[2] ?? '',
      shared: /SHARED\s*=\s*"YES"/.test(chunk),
      text: chunk.trim(),
    });
  }
  return blocks;
}

/** Our names per list: TM_MAD -d, DATASTORE_MAD -d, DATASTORE_MAD -s (shared system datastores). */
export function ourDriverNames(): { tm: string[]; datastore: string[]; systemDs: string[] } {
  const blocks = snippetMadConfBlocks();
  const tm = blocks.filter((b) => b.kind === 'TM_MAD_CONF');
  return {
    tm: tm.map((b) => b.name),
    datastore: blocks.filter((b) => b.kind === 'DS_MAD_CONF').map((b) => b.name),
    systemDs: tm.filter((b) => b.shared).map((b) => b.name),
  };
}

export type OnedConfEdit = 'apply' | 'remove';

/** The edited text; equal to `text` when nothing had to change. `file` only names it in errors. */
export function editOnedConf(text: string, edit: OnedConfEdit, file: string): string {
  const names = ourDriverNames();
  const add = edit === 'apply';
  let out = editMadArguments(text, 'TM_MAD', file, (args) => setList(args, '-d', names.tm, add));
  out = editMadArguments(out, 'DATASTORE_MAD', file, (args) =>
    setList(setList(args, '-d', names.datastore, add), '-s', names.systemDs, add),
  );
  const section = findSection(out, file);
  const rest = section
    ? out.slice(0, section.begin).trimEnd() + '\n' + out.slice(section.end).replace(/^\n+/, '')
    : out;
  if (!add) return rest;
  refuseForeignBlocks(rest, file);
  const wanted = [SECTION_BEGIN, ...snippetMadConfBlocks().map((b) => b.text), SECTION_END].join('\n\n');
  if (section && out.slice(section.begin, section.end) === wanted) return out;
  return `${rest.trimEnd()}\n\n${wanted}\n`;
}

/** Applies `change` to the ARGUMENTS string of the (uncommented) `MAD = [ ... ]` block. */
function editMadArguments(text: string, mad: string, file: string, change: (args: string) => string): string {
  const block = new RegExp(
    `^([ \\t]*${mad}[ \\t]*=[ \\t]*\\[[^\\]]*?ARGUMENTS[ \\t]*=[ \\t]*")([^"]*)(")`,
    'm',
  );
  const m = block.exec(text);
  if (!m) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `oned.conf ${file}: no ${mad} = [ ... ARGUMENTS = "..." ] block found, so our drivers cannot be added to it`,
    );
  }
  const args = m[2] ?? '';
  const next = change(args);
  if (next === args) return text;
  const start = m.index + (m[1] ?? '').length;
  return text.slice(0, start) + next + text.slice(start + args.length);
}

/** Adds (or removes) names in the comma list after `flag`; adds the flag when absent and needed. */
export function setList(args: string, flag: string, names: string[], add: boolean): string {
  const re = new RegExp(`(^|\\s)${flag}\\s+(\\S+)`);
  const m = re.exec(args);
  if (!m) return add && names.length > 0 ? `${args.trimEnd()} ${flag} ${names.join(',')}` : args;
  const list = (m[2] ?? '').split(',').filter((n) => n.length > 0);
  const next = add
    ? [...list, ...names.filter((n) => !list.includes(n))]
    : list.filter((n) => !names.includes(n));
  if (next.join(',') === list.join(',')) return args;
  const start = m.index + m[0].length - (m[2] ?? '').length;
  if (next.length === 0) return (args.slice(0, m.index) + args.slice(m.index + m[0].length)).trimEnd();
  return args.slice(0, start) + next.join(',') + args.slice(start + (m[2] ?? '').length);
}

/** Where our section starts and ends (just after its END line), if the text has one. */
function findSection(text: string, file: string): { begin: number; end: number } | undefined {
  const begin = text.indexOf(SECTION_BEGIN);
  if (begin < 0) return undefined;
  const end = text.indexOf(SECTION_END, begin);
  if (end < 0) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `oned.conf ${file}: "${SECTION_BEGIN}" has no "${SECTION_END}" line; fix the section by hand`,
    );
  }
  return { begin, end: end + SECTION_END.length };
}

/** A block of ours declared by hand outside our section would make oned see the driver twice. */
function refuseForeignBlocks(text: string, file: string): void {
  for (const b of snippetMadConfBlocks()) {
    const re = new RegExp(`^[ \\t]*${b.kind}[ \\t]*=[ \\t]*\\[[^\\]]*NAME[ \\t]*=[ \\t]*"${b.name}"`, 'm');
    const m = re.exec(text);
    if (m) {
      const line = text.slice(0, m.index).split('\n').length;
      throw new StorageError(
        'INVALID_ARGUMENT',
        `oned.conf ${file}: line ${line} already declares ${b.kind} "${b.name}" outside the one-storage section; remove it and apply again`,
      );
    }
  }
}
