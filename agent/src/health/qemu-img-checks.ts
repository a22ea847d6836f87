import type { HealthCheck } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { QEMU_IMG } from '../qemu/qemu-img.js';
import { QEMU_NBD } from '../qemu/qemu-nbd.js';
import { toolOutput, versionIn } from './tool-version.js';

/**
 * The qemu-img subcommands and options the agent's actions pass (agent/src/qemu/qemu-img.ts and
 * its callers): each must appear in that subcommand's line of `qemu-img --help`. `bitmap` is the
 * incremental backups' (QEMU 5.0 and later).
 */
export const QEMU_IMG_FEATURES: ReadonlyArray<{ command: string; options: readonly string[] }> = [
  { command: 'convert', options: ['-U', '-f', '-O', '-m', '-S', '-q'] },
  { command: 'create', options: ['-f', '-b', '-F', '-o', '-q'] },
  { command: 'info', options: ['-f', '--output', '-U'] },
  { command: 'map', options: ['-f', '--output', '--image-opts', '-U'] },
  { command: 'rebase', options: ['-u', '-f', '-F', '-b', '-q'] },
  { command: 'resize', options: ['-f', '--preallocation'] },
  { command: 'bitmap', options: ['--add', '--remove', '-f'] },
];
const INSTALL_QEMU_UTILS = 'install qemu-utils (Debian, Ubuntu) or qemu-img (RHEL family)';

/** qemu-img present, its version, the features the actions use; qemu-nbd (incremental backups). */
export async function qemuImgChecks(signal: AbortSignal): Promise<HealthCheck[]> {
  const version = await toolOutput(QEMU_IMG, ['--version'], signal);
  if (!version.ok) {
    return [{ name: 'qemu-img', ok: false, warning: false, detail: version.error, fix: INSTALL_QEMU_UTILS }];
  }
  const checks: HealthCheck[] = [
    {
      name: 'qemu-img',
      ok: true,
      warning: false,
      detail: `version ${versionIn(version.stdout) ?? 'unknown'}`,
      fix: '',
    },
  ];
  const help = await toolOutput(QEMU_IMG, ['--help'], signal);
  const missing = help.ok ? missingFeatures(help.stdout) : [`--help failed: ${help.error}`];
  checks.push(
    missing.length === 0
      ? {
          name: 'qemu-img features',
          ok: true,
          warning: false,
          detail: QEMU_IMG_FEATURES.map((f) => f.command).join(', '),
          fix: '',
        }
      : {
          name: 'qemu-img features',
          ok: false,
          warning: false,
          detail: `missing: ${missing.join('; ')}`,
          fix: 'upgrade qemu-img to QEMU 5.0 or later (bitmap), as the distribution ships it',
        },
  );
  const nbd = await toolOutput(QEMU_NBD, ['--version'], signal);
  checks.push(
    nbd.ok
      ? {
          name: 'qemu-nbd',
          ok: true,
          warning: false,
          detail: `version ${versionIn(nbd.stdout) ?? 'unknown'}`,
          fix: '',
        }
      : {
          name: 'qemu-nbd',
          ok: false,
          warning: false,
          detail: nbd.error,
          fix: `${INSTALL_QEMU_UTILS} (incremental backups read dirty blocks through qemu-nbd)`,
        },
  );
  return checks;
}

/** "convert -W" style names of what `help` (qemu-img --help) lacks. */
export function missingFeatures(help: string): string[] {
  const missing: string[] = [];
  for (const { command, options } of QEMU_IMG_FEATURES) {
    const line = help.split('\n').find((l) => l.trimStart().startsWith(`${command} `));
    if (line === undefined) {
      missing.push(`qemu-img ${command}`);
      continue;
    }
    for (const option of options) {
      const escaped = option.replace(/[-]/g, '\\-');
      if (!new RegExp(`(^|[\\s[(|])${escaped}([\\s\\]=|)]|$)`).test(line))
        missing.push(`${command} ${option}`);
    }
  }
  return missing;
}
