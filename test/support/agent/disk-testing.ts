import { DEFAULT_LIBVIRT_URI } from '../../../agent/src/libvirt/virsh.js';
import { execFile } from 'node:child_process';
import { pino } from 'pino';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { JobRegistry } from '../../../agent/src/jobs/job-registry.js';
import { PathLocks } from '../../../agent/src/locks/path-locks.js';
import { Monitoring } from '../../../agent/src/monitor/monitoring.js';
import { Roots } from '../../../agent/src/paths/roots.js';
import type { AgentContext, CallContext } from '../../../agent/src/rpc/context.js';
import { copyLocal } from '../../../agent/src/transfer/local-copy.js';
import { AGENT_NAME, LOCATION } from './agent-fixture.js';
import { KIB, MIB } from '../../../common/src/units.js';
export { KIB, MIB };

/** Test helpers for disk operations with real qemu-img and qemu-io (not part of the agent). */

export async function qemuImg(...args: string[]): Promise<string> {
  return (await runTool('qemu-img', args)).stdout;
}

/** `qemu-io -f FMT -c 'write -P 0xNN off len'`, one call per byte pattern. */
export async function writePattern(
  file: string,
  format: string,
  byte: number,
  offset: number,
  length: number,
): Promise<void> {
  await runTool('qemu-io', ['-f', format, '-c', `write -P ${hex(byte)} ${offset} ${length}`, file]);
}

/**
 * Reads every range with `read -P` in one qemu-io run (read-only, -U) and returns the ranges whose
 * content differs ("Pattern verification failed" names the offset). Empty means all matched.
 */
export async function patternMismatches(
  file: string,
  format: string,
  ranges: ReadonlyArray<{ offset: number; length: number; byte: number }>,
): Promise<string[]> {
  const args = ['-r', '-U', '-f', format];
  for (const r of ranges) args.push('-c', `read -P ${hex(r.byte)} ${r.offset} ${r.length}`);
  args.push(file);
  // qemu-io exits 1 when a pattern differs; the output says where, so read it either way.
  const out = await new Promise<string>((resolve) => {
    execFile('qemu-io', args, { env: { ...process.env, LANG: 'C' } }, (_err, stdout, stderr) =>
      resolve(`${stdout}\n${stderr}`),
    );
  });
  if (!/read \d+\/\d+ bytes/.test(out)) return [`qemu-io read nothing: ${out.slice(0, 200)}`];
  return out.split('\n').filter((l) => /Pattern verification failed|error|fail/i.test(l));
}

/** `qemu-img check` output, throwing when the image is not clean. */
export async function checkClean(file: string, format = 'qcow2'): Promise<void> {
  await runTool('qemu-img', ['check', '-U', '-f', format, file]);
}

/** The backing names stored along a chain, from the top (`info --backing-chain`). */
export async function storedBackingNames(file: string): Promise<Array<string | undefined>> {
  const json = JSON.parse(await qemuImg('info', '-U', '--output=json', '--backing-chain', file)) as Array<
    Record<string, unknown>
  >;
  return json.map((l) => l['backing-filename'] as string | undefined);
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/** An in-process agent context over `root` (served as LOCATION) with the real copyLocal. */
export function localAgent(root: string, lockWaitMs = 50): { agent: AgentContext; call: CallContext } {
  const rootConfigs = [{ location: LOCATION, path: root }];
  const roots = new Roots(AGENT_NAME, rootConfigs);
  const silent = pino({ level: 'silent' });
  const agent: AgentContext = {
    name: AGENT_NAME,
    version: 'test',
    roots,
    locks: new PathLocks(lockWaitMs),
    dataPath: {
      dataAddress: () => '127.0.0.1:1',
      openSend: () => Promise.reject(new Error('unused')),
      receive: () => Promise.reject(new Error('unused')),
      openImportSource: () => Promise.reject(new Error('unused')),
      pullInto: () => Promise.reject(new Error('unused')),
      openStagedFile: () => Promise.reject(new Error('unused')),
    },
    copyLocal,
    libvirtUri: DEFAULT_LIBVIRT_URI,
    monitoring: new Monitoring({ source: 'test', roots: rootConfigs }, roots, silent),
    imports: { dirs: ['/var/tmp'], ca: [] },
    jobs: new JobRegistry(),
  };
  return { agent, call: { signal: new AbortController().signal, log: silent } };
}

/** Deterministic PRNG (mulberry32): a failing random sequence can be replayed from its seed. */
export function prng(seed: number): {
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
} {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => {
      const item = items[int(items.length)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    },
  };
}
