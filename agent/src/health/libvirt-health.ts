import { oneLine } from '../../../common/src/errors.js';
import { virsh } from '../libvirt/virsh.js';
import type { AgentConfig } from '../config.js';

/** `virsh uri` connects and answers at once; a libvirtd that takes longer is as good as down. */
export const LIBVIRT_PING_TIMEOUT_MS = 5_000;

export interface LibvirtFinding {
  ok: boolean;
  disabled: boolean;
  detail: string;
}

/**
 * Whether libvirt answers at the agent's libvirt.uri, through the virsh runner the live actions
 * use (`virsh -c URI -q uri`). A node whose config says it runs no VMs is not asked; one without
 * virsh has no libvirt at all, so it is no hypervisor either (a backup server, a front-end that
 * runs no VMs) and is reported as such, not as a fault. Installed but not answering is a fault.
 */
export async function libvirtHealth(
  libvirt: AgentConfig['libvirt'],
  signal: AbortSignal,
): Promise<LibvirtFinding> {
  if (!libvirt.enabled) {
    return { ok: false, disabled: true, detail: 'not used on this node (libvirt.enabled is false)' };
  }
  try {
    await virsh(['uri'], {
      uri: libvirt.uri,
      what: libvirt.uri,
      signal,
      timeoutMs: LIBVIRT_PING_TIMEOUT_MS,
      ownProcess: true,
    });
    return { ok: true, disabled: false, detail: `${libvirt.uri} answers` };
  } catch (err) {
    if (notInstalled(err))
      return { ok: false, disabled: true, detail: 'not installed on this node (no virsh)' };
    return { ok: false, disabled: false, detail: oneLine(err instanceof Error ? err.message : String(err)) };
  }
}

/** runTool's failure for a tool that is not on PATH (its cause is spawn's ENOENT). */
export function notInstalled(err: unknown): boolean {
  return (err as { cause?: { code?: unknown } } | undefined)?.cause?.code === 'ENOENT';
}
