import type { HealthCheck } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { AgentConfig } from '../config.js';
import { VIRSH } from '../libvirt/virsh.js';
import { atLeast, toolOutput, versionIn } from './tool-version.js';

/**
 * The oldest versions the live backups work with: libvirt enables its incremental backup API
 * (checkpoints, backup-begin) by default from 7.2, with QEMU 6.0 underneath.
 */
export const MIN_LIBVIRT = '7.2';
export const MIN_QEMU = '6.0';
/** QEMU system emulators by Node's process.arch, tried on PATH when libvirt does not answer. */
const QEMU_BINARIES: Readonly<Record<string, string>> = {
  x64: 'qemu-system-x86_64',
  arm64: 'qemu-system-aarch64',
};

/**
 * libvirt's and QEMU's versions as `virsh version --daemon` reports them at libvirt.uri (the
 * hypervisor libvirt runs); without an answer, QEMU is looked for on PATH. A node whose config says
 * it runs no VMs gets one ok line saying so.
 */
export async function hypervisorChecks(
  libvirt: AgentConfig['libvirt'],
  signal: AbortSignal,
): Promise<HealthCheck[]> {
  if (!libvirt.enabled) {
    return [
      {
        name: 'libvirt',
        ok: true,
        warning: false,
        detail: 'not used on this node (libvirt.enabled is false)',
        fix: '',
      },
    ];
  }
  const out = await toolOutput(VIRSH, ['-c', libvirt.uri, '-q', 'version', '--daemon'], signal);
  if (!out.ok && out.missing) {
    return [
      {
        name: 'libvirt',
        ok: true,
        warning: false,
        detail: 'not installed on this node (no virsh): no VMs run here',
        fix: '',
      },
    ];
  }
  const checks: HealthCheck[] = [];
  let qemu: string | undefined;
  if (!out.ok) {
    checks.push({
      name: 'libvirt',
      ok: false,
      warning: false,
      detail: out.error,
      fix: `start libvirtd and check that the agent's user may connect to ${libvirt.uri} (group libvirt)`,
    });
  } else {
    const daemon =
      /Running against daemon:\s*(\S+)/.exec(out.stdout)?.[1] ?? versionIn(out.stdout) ?? 'unknown';
    qemu = /Running hypervisor:\s*QEMU\s+(\S+)/.exec(out.stdout)?.[1];
    checks.push(versionCheck('libvirt', daemon, MIN_LIBVIRT, `at ${libvirt.uri}`));
  }
  if (qemu === undefined) {
    const binary = QEMU_BINARIES[process.arch] ?? 'qemu-system-x86_64';
    const found = await toolOutput(binary, ['--version'], signal);
    qemu = found.ok ? versionIn(found.stdout) : undefined;
    if (qemu === undefined) {
      checks.push({
        name: 'QEMU',
        ok: false,
        warning: false,
        detail: `libvirt did not report it and ${binary} ${found.ok ? 'printed no version' : `failed: ${found.error}`}`,
        fix: 'install the QEMU system emulator (qemu-system-x86 on Debian, qemu-kvm on RHEL)',
      });
      return checks;
    }
  }
  checks.push(versionCheck('QEMU', qemu, MIN_QEMU, ''));
  return checks;
}

function versionCheck(name: string, version: string, min: string, where: string): HealthCheck {
  const detail = `version ${version}${where ? ` ${where}` : ''}`;
  return atLeast(version, min)
    ? { name, ok: true, warning: false, detail, fix: '' }
    : {
        name,
        ok: false,
        warning: false,
        detail: `${detail}, older than ${min} (live backups need it)`,
        fix: `upgrade ${name} to ${min} or later`,
      };
}
