import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../../common/src/tools/run-tool.js';

/** `qemu-img create -f <format> <file> <mb>M` (parents made), optionally backed by `backing`. */
export async function makeImage(
  file: string,
  format: 'raw' | 'qcow2',
  mb = 16,
  backing?: { name: string; format: 'raw' | 'qcow2' },
): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  const b = backing ? ['-u', '-b', backing.name, '-F', backing.format] : [];
  await runTool('qemu-img', ['create', '-q', '-f', format, ...b, file, `${mb}M`]);
  return file;
}

/** Rewrites the backing name of a qcow2 file without opening it (`rebase -u`): loops included. */
export async function setBacking(file: string, name: string): Promise<void> {
  await runTool('qemu-img', ['rebase', '-q', '-u', '-f', 'qcow2', '-b', name, '-F', 'qcow2', file]);
}
