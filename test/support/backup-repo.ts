/**
 * A VM's `<vmdir>/backup/` as prebackup leaves it (qcow2 `disk.<disk>.<inc>` made with qemu-img,
 * `vm.xml` in base64), and direct agent calls with the coordinator's certificate, for the backup
 * repository tests (docs/backups.md#repository).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '../../agent/src/qemu/qemu-img.js';
import { writePattern } from '../../cli/src/demo/demo-images.js';
import { vmXml, type VmFixture } from '../../cli/src/demo/fake-oned/fixtures.js';
import type { Stack } from '../../cli/src/demo/stack.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { loadTls } from '../../common/src/tls.js';
import { MIB } from '../../common/src/units.js';
import {
  AgentClient,
  type AgentMethod,
  type AgentRequest,
  type AgentResponse,
} from '../../coordinator/src/agents/agent-client.js';

export interface BackupDisk {
  diskId: number;
  inc: number;
  sizeMb: number;
  /** MiB of data written (pattern `pattern`) from offset 0. */
  dataMb: number;
  pattern: number;
}

/** The VM XML a fabricated backup's vm.xml holds (DISK SIZE as given), for VM `id`. */
export function backupVm(id: number, disks: ReadonlyArray<{ diskId: number; sizeMb: number }>): VmFixture {
  return {
    id,
    name: `vm-${id}`,
    disks: disks.map((d) => ({
      diskId: d.diskId,
      imageId: 10 + d.diskId,
      size: d.sizeMb,
      format: 'qcow2',
      tmMad: 'grpc',
    })),
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  };
}

/** vm.xml as prebackup writes it: the VM XML in base64, wrapped at 60 characters (Ruby's encode64). */
export function encodedVmXml(xml: string): string {
  return `${(
    Buffer.from(xml)
      .toString('base64')
      .match(/.{1,60}/g) ?? []
  ).join('\n')}\n`;
}

/** Writes `<vmDir>/backup/` (a local path) with the disks and vm.xml; returns the backup dir. */
export async function fabricateBackup(
  vmDir: string,
  vm: VmFixture,
  disks: readonly BackupDisk[],
): Promise<string> {
  const dir = join(vmDir, 'backup');
  await mkdir(dir, { recursive: true });
  for (const d of disks) {
    const file = join(dir, `disk.${d.diskId}.${d.inc}`);
    await create(file, { format: 'qcow2', sizeMb: d.sizeMb, what: `create ${file}` });
    if (d.dataMb > 0) await writePattern(file, 'qcow2', d.pattern, 0, d.dataMb * MIB);
  }
  await writeFile(join(dir, 'vm.xml'), encodedVmXml(vmXml(vm)));
  return dir;
}

/** Calls agents of a stack as the coordinator does (its certificate, mutual TLS). */
export class StackAgents {
  private readonly clients = new Map<string, AgentClient>();

  constructor(private readonly stack: Stack) {}

  call<M extends AgentMethod>(
    host: string,
    method: M,
    request: AgentRequest<M>,
    signal?: AbortSignal,
  ): Promise<AgentResponse<M>> {
    let client = this.clients.get(host);
    if (!client) {
      client = new AgentClient(
        { name: host, endpoint: `127.0.0.1:${this.stack.agentPort(host)}`, certName: host },
        loadTls(pkiFiles(this.stack.pkiDir, 'coordinator'), 'test'),
      );
      this.clients.set(host, client);
    }
    return client.call(method, request, {
      deadlineMs: 60_000,
      requestId: `test-${method}`,
      ...(signal ? { signal } : {}),
    });
  }

  /** OpenSend of `path` on `from`, ReceiveBackup into `backupDir` on `to`: the backup action's two calls. */
  async send(
    from: string,
    path: string,
    to: string,
    backupDir: string,
    signal?: AbortSignal,
  ): Promise<AgentResponse<'receiveBackup'>> {
    const ticket = await this.call(from, 'openSend', { path, ttlSeconds: 0, receiverName: to });
    return this.call(
      to,
      'receiveBackup',
      { ticket: ticket.ticket, dataAddress: ticket.dataAddress, sourceName: from, backupDir },
      signal,
    );
  }

  /** Drops `host`'s channel (after its agent restarted: a new channel connects at once). */
  forget(host: string): void {
    this.clients.get(host)?.close();
    this.clients.delete(host);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
