// Real running domains for the live tests: TCG (`type='qemu'`), 64 MiB, no guest OS (they sit in
// SeaBIOS), transient like OpenNebula's (`virsh create`). Their disks get `share-rw` so a test can
// write into a running guest's disk through the QEMU monitor (`qemu-io <node> "write ..."`), which
// is how content is put into a disk while the VM runs (docs/toolchain.md#writing-into-a-running-guests-disk).
//
// The node is the disk's top node as query-block names it, read just before each command. Block
// jobs change it under a test: a push-mode backup job puts a copy-before-write filter (an
// auto-named node, `#block225`) on top and takes it away when the job ends, at a moment no test
// controls (a job the agent left when it was killed ends when QEMU is done). When qemu-io then
// finds no such node, the graph changed between the two monitor commands: the top node is read
// again and the command repeated (a monitor command that fails at lookup has written nothing), a
// few times at most: a node still gone after that fails the test (test/support/run-on-top-node.ts).
// The write goes through the filter while it is there, as the guest's own writes do. (`qemu-io -d
// <device id>` cannot stand in: the id of a virtio-blk-pci device names the PCI proxy, which has
// no block backend.)
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runOnTopNode } from './run-on-top-node.js';

const run = promisify(execFile);
export const LIBVIRT_URI = 'qemu:///system';
const REPO = join(import.meta.dirname, '..', '..');

async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-c', LIBVIRT_URI, '-q', ...args], {
    env: { ...process.env, LANG: 'C', LC_ALL: 'C' },
    timeout: 120_000,
  });
  return stdout;
}

/**
 * Makes sure libvirtd answers, starting it with scripts/start-libvirt.sh when it does not (as
 * .ci/run does). A machine without libvirt fails here, loudly: the live tests never skip.
 */
export async function ensureLibvirt(): Promise<void> {
  try {
    await virsh('version');
    return;
  } catch {
    // not answering: start it
  }
  await run('bash', [join(REPO, 'scripts', 'start-libvirt.sh')], { timeout: 60_000 }).catch((err: Error) => {
    throw new Error(`libvirt is needed for the live tests and could not be started: ${err.message}`);
  });
  await virsh('version');
}

export interface TestDiskSpec {
  readonly target: string;
  /** The path the domain opens (usually `<vmdir>/disk.N`, a symlink in the snapshot layout). */
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
}

export interface TestDomain {
  readonly name: string;
  /** qemu-io inside the running QEMU on the disk's current top node, then a flush. */
  write(target: string, pattern: number, offset: number, length: number): Promise<void>;
  /** The guest's view: reads `length` bytes at `offset` and fails unless each is `pattern`. */
  read(target: string, pattern: number, offset: number, length: number): Promise<void>;
  /** Write zeroes (`write -z`), then a flush. */
  writeZeroes(target: string, offset: number, length: number): Promise<void>;
  /** Flushes the disk so `qemu-img -U` outside sees what the guest wrote. */
  flush(target: string): Promise<void>;
  state(): Promise<string>;
  /** The file libvirt says the disk `target` runs on (`virsh domblklist`). */
  source(target: string): Promise<string>;
  destroy(): Promise<void>;
}

/** Starts a transient TCG domain with these disks; `destroy()` stops it (idempotent). */
export async function startDomain(
  name: string,
  disks: readonly TestDiskSpec[],
  dir: string,
): Promise<TestDomain> {
  const xml = domainXml(name, disks);
  const file = join(dir, `${name}.xml`);
  await writeFile(file, xml);
  await virsh('create', file);
  return domainHandle(name);
}

/** A handle on a domain some other code started (or restarted). */
export function domainHandle(name: string): TestDomain {
  const hmp = async (target: string, cmd: string): Promise<string> => {
    const out = await runOnTopNode(
      () => topNode(name, target),
      (node) => virsh('qemu-monitor-command', name, '--hmp', `qemu-io ${node} "${cmd}"`),
      `qemu-io ${cmd} on ${name} ${target}`,
    );
    if (/fail|error|Pattern verification/i.test(out))
      throw new Error(`qemu-io ${cmd} on ${name} ${target}: ${out.trim()}`);
    return out;
  };
  const flush = async (target: string): Promise<void> => {
    await hmp(target, 'flush');
  };
  return {
    name,
    async write(target, pattern, offset, length) {
      await hmp(target, `write -P ${pattern} ${offset} ${length}`);
      await flush(target);
    },
    async read(target, pattern, offset, length) {
      await hmp(target, `read -P ${pattern} ${offset} ${length}`);
    },
    async writeZeroes(target, offset, length) {
      await hmp(target, `write -z ${offset} ${length}`);
      await flush(target);
    },
    flush,
    async state() {
      return (await virsh('domstate', name)).trim();
    },
    source: (target) => diskSource(name, target),
    async destroy() {
      await virsh('destroy', name).catch(() => undefined);
    },
  };
}

/** The node name of the disk's current top layer (it changes with every snapshot or pivot). */
async function topNode(domain: string, target: string): Promise<string> {
  const alias = await aliasOf(domain, target);
  const out = await virsh('qemu-monitor-command', domain, '{"execute":"query-block"}');
  const blocks = (
    JSON.parse(out) as { return: Array<{ qdev?: string; inserted?: { 'node-name'?: string } }> }
  ).return;
  const b = blocks.find((x) => x.qdev?.includes(`/${alias}/`) || x.qdev === alias);
  const node = b?.inserted?.['node-name'];
  if (!node) throw new Error(`no block node for ${target} (${alias}) of ${domain}`);
  return node;
}

async function aliasOf(domain: string, target: string): Promise<string> {
  const xml = await virsh('dumpxml', domain);
  const re = /<disk[\s\S]*?<\/disk>/g;
  for (const m of xml.matchAll(re)) {
    if (m[0].includes(`dev='${target}'`)) {
      const a = /<alias name='([^']+)'/.exec(m[0])?.[1];
      if (a) return a;
    }
  }
  throw new Error(`${domain} has no disk ${target}`);
}

/** The file libvirt says a domain's disk `target` runs on (`virsh domblklist`); '' when none. */
export async function diskSource(domain: string, target: string): Promise<string> {
  const out = await virsh('domblklist', domain);
  const line = out.split('\n').find((l) => l.trim().startsWith(`${target} `));
  return line?.trim().split(/\s+/)[1] ?? '';
}

/** Removes a domain that may be left from an earlier, interrupted run. */
export async function destroyIfRunning(name: string): Promise<void> {
  await virsh('destroy', name).catch(() => undefined);
}

export function domainXml(name: string, disks: readonly TestDiskSpec[]): string {
  const diskXml = disks
    .map(
      (d) => `    <disk type='file' device='disk'>
      <driver name='qemu' type='${d.format}'/>
      <source file='${d.path}'/>
      <target dev='${d.target}' bus='virtio'/>
      <alias name='ua-${d.target}'/>
    </disk>`,
    )
    .join('\n');
  const overrides = disks
    .map(
      (d) =>
        `    <qemu:device alias='ua-${d.target}'><qemu:frontend><qemu:property name='share-rw' type='bool' value='true'/></qemu:frontend></qemu:device>`,
    )
    .join('\n');
  return `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
${diskXml}
  </devices>
  <qemu:override>
${overrides}
  </qemu:override>
</domain>
`;
}
