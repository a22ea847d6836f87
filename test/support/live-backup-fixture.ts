/**
 * A real agent (gRPC over mutual TLS) with libvirt, for the live-backup tests: VM directories with
 * real qcow2/raw disks, libvirt TCG domains named one-bk<VM id>, and BackupPrepare/BackupFinish
 * calls as the backup shims make them. Call `const agent = useLiveBackupAgent(firstVmId)` once at the
 * top of a test file: it registers the beforeAll that starts the agent (and sets `agent.client`) and
 * the afterAll that destroys every domain started and stops the agent. Give each file its own range
 * of VM ids, so that no two files ever use the same domain name.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { pkiFiles } from '../../common/src/pki/pki.js';
import {
  type AgentServiceClient,
  BackupMode,
  type BackupPrepareRequest,
  type BackupPrepareResponse,
  FreezeMode,
  type ImageFormat,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { wireFormat } from './wire-enums.js';
import { parseAgentConfig } from '../../agent/src/config.js';
import { type RunningAgent, startAgent } from '../../agent/src/server.js';
import { AGENT_NAME, LOCATION, agentClient, call, makePki } from './agent/agent-fixture.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import { LIBVIRT_URI, type TestDomain, destroyIfRunning, ensureLibvirt, startDomain } from './libvirt.js';

const run = promisify(execFile);
export { MIB } from '../../common/src/units.js';
const DISK_MB = 64;

/** The agent of one test file and the calls that use it; `client` is set by the beforeAll. */
export interface LiveBackupAgent {
  client: AgentServiceClient;
  /** A VM directory 0/<next id> with one fresh disk per entry (not running). */
  newVm(disks: Array<{ format: 'qcow2' | 'raw'; sizeMb?: number }>): Promise<Vm>;
  /** Starts `vm`'s domain over its disks; the afterAll destroys it. */
  startVm(vm: Vm, formats: Array<'qcow2' | 'raw'>): Promise<TestDomain>;
  /**
   * BackupPrepare of `vm` with defaults; a disk without a format gets the one the VM was made with
   * (DISK/FORMAT, as the coordinator passes it).
   */
  prepare(vm: Vm, r: PrepareArgs): Promise<BackupPrepareResponse>;
  finish(vm: Vm, live?: boolean): Promise<unknown>;
}

export type PrepareArgs = Partial<Omit<BackupPrepareRequest, 'disks'>> & {
  disks: Array<Omit<BackupPrepareRequest['disks'][number], 'format'> & { format?: ImageFormat }>;
};

export function useLiveBackupAgent(firstVmId: number): LiveBackupAgent {
  let vmSeq = firstVmId;
  let base = '';
  let root: string;
  let agent: RunningAgent | undefined;
  const domains: TestDomain[] = [];

  beforeAll(async () => {
    await ensureLibvirt();
    base = await mkdtemp(join(tmpdir(), 'live-backup-'));
    // QEMU runs as libvirt-qemu: it must reach the disks.
    await chmod(base, 0o755);
    const pki = await makePki(join(base, 'x'));
    root = join(base, 'datastores');
    await mkdir(join(root, '0'), { recursive: true });
    const config = parseAgentConfig(
      {
        name: AGENT_NAME,
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: root }],
        tls: pkiFiles(pki.dir, AGENT_NAME),
        libvirt: { uri: LIBVIRT_URI },
      },
      'test config',
    );
    agent = await startAgent(config, pino({ level: process.env['BACKUP_TEST_LOG'] ?? 'silent' }));
    ctx.client = agentClient(agent.port, pki.dir);
  }, 60_000);

  afterAll(async () => {
    for (const d of domains) await d.destroy();
    ctx.client?.close();
    await agent?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  async function newVm(disks: Array<{ format: 'qcow2' | 'raw'; sizeMb?: number }>): Promise<Vm> {
    const id = vmSeq++;
    const dir = join(root, '0', String(id));
    await mkdir(dir, { recursive: true });
    const repo = join(base, 'repo', String(id));
    await mkdir(repo, { recursive: true });
    for (const [i, d] of disks.entries()) {
      await runTool('qemu-img', [
        'create',
        '-q',
        '-f',
        d.format,
        join(dir, `disk.${i}`),
        `${d.sizeMb ?? DISK_MB}M`,
      ]);
    }
    return {
      id,
      dir,
      onedDir: `${LOCATION}/0/${id}`,
      domain: `one-bk${id}`,
      repo,
      disk: (n) => join(dir, `disk.${n}`),
      formats: disks.map((d) => d.format),
    };
  }

  async function startVm(vm: Vm, formats: Array<'qcow2' | 'raw'>): Promise<TestDomain> {
    await destroyIfRunning(vm.domain);
    const d = await startDomain(
      vm.domain,
      formats.map((format, i) => ({ target: `vd${String.fromCharCode(97 + i)}`, path: vm.disk(i), format })),
      vm.dir,
    );
    domains.push(d);
    return d;
  }

  function prepare(vm: Vm, r: PrepareArgs): Promise<BackupPrepareResponse> {
    return call(ctx.client.backupPrepare.bind(ctx.client), {
      vmDir: vm.onedDir,
      vmId: vm.id,
      domain: vm.domain,
      live: true,
      mode: BackupMode.BACKUP_MODE_FULL,
      backupId: 0,
      parentId: -1,
      freeze: FreezeMode.FREEZE_MODE_NONE,
      vmXml: `<VM><ID>${vm.id}</ID></VM>`,
      ...r,
      disks: r.disks.map((d) => ({ ...d, format: d.format ?? wireFormat(vm.formats[d.diskId] ?? 'qcow2') })),
    });
  }

  function finish(vm: Vm, live = true): Promise<unknown> {
    return call(ctx.client.backupFinish.bind(ctx.client), {
      vmDir: vm.onedDir,
      domain: vm.domain,
      live,
      failed: false,
    });
  }

  const ctx = { newVm, startVm, prepare, finish } as Partial<LiveBackupAgent> as LiveBackupAgent;
  return ctx;
}

export async function virsh(...args: string[]): Promise<string> {
  return (await run('virsh', ['-c', LIBVIRT_URI, '-q', ...args])).stdout;
}

export async function qemuIo(file: string, format: string, cmd: string): Promise<void> {
  await runTool('qemu-io', ['-f', format, '-c', cmd, file]);
}

export interface Vm {
  id: number;
  dir: string;
  onedDir: string;
  domain: string;
  repo: string;
  disk(n: number): string;
  /** DISK/FORMAT of each disk, as oned would pass it. */
  formats: Array<'qcow2' | 'raw'>;
}

export const inc = (n: number): Pick<BackupPrepareRequest, 'mode' | 'backupId' | 'parentId'> => ({
  mode: BackupMode.BACKUP_MODE_INCREMENT,
  backupId: n,
  parentId: n - 1,
});
