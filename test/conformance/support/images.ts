import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../../common/src/tools/run-tool.js';
import type { ConformanceAgent } from './conformance-agent.js';
import { ds } from '../../support/agent/agent-fixture.js';

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

/** A `format` image in image datastore 1, tracked (with its .snap) for cleanup; its oned path. */
export async function trackedImage(
  c: ConformanceAgent,
  name: string,
  format: 'raw' | 'qcow2' = 'qcow2',
): Promise<string> {
  c.tracker.track(`1/${name}.snap`);
  await makeImage(c.local(c.tracker.track(`1/${name}`)), format);
  return ds(`1/${name}`);
}

/** Two qcow2 files in 0/<vm> backed by each other, a chain that loops; the oned path of the first. */
export async function loopingChain(c: ConformanceAgent, vm: string): Promise<string> {
  c.tracker.track(`0/${vm}`);
  await makeImage(c.local(`0/${vm}/a`), 'qcow2', 16, { name: 'b', format: 'qcow2' });
  await makeImage(c.local(`0/${vm}/b`), 'qcow2');
  await setBacking(c.local(`0/${vm}/b`), 'a');
  return ds(`0/${vm}/a`);
}
