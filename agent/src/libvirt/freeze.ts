import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import { FreezeMode as WireFreezeMode } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { type VirshOptions, virsh } from './virsh.js';

/**
 * BACKUP_CONFIG/FS_FREEZE (docs/opennebula/backups.md#flow): AGENT freezes the guest's filesystems through the QEMU
 * guest agent, SUSPEND pauses the vCPUs, NONE does nothing.
 */
export const FREEZE_MODES = ['NONE', 'AGENT', 'SUSPEND'] as const;
export type FreezeMode = (typeof FREEZE_MODES)[number];

const FREEZE_NAMES: ReadonlyMap<WireFreezeMode, FreezeMode> = new Map([
  [WireFreezeMode.FREEZE_MODE_UNSPECIFIED, 'NONE'],
  [WireFreezeMode.FREEZE_MODE_NONE, 'NONE'],
  [WireFreezeMode.FREEZE_MODE_AGENT, 'AGENT'],
  [WireFreezeMode.FREEZE_MODE_SUSPEND, 'SUSPEND'],
]);

/**
 * A request's FreezeMode: UNSPECIFIED is NONE (oned's default); a number this agent does not know
 * is INVALID_ARGUMENT naming the field and the allowed values. `what` starts the message.
 */
export function freezeModeOf(value: WireFreezeMode, what: string): FreezeMode {
  const mode = FREEZE_NAMES.get(value);
  if (mode !== undefined) return mode;
  throw new StorageError(
    'INVALID_ARGUMENT',
    `${what}: freeze must be one of ${FREEZE_MODES.join(', ')} (got ${value})`,
  );
}

/** How the guest was actually held still: AGENT can fall back to SUSPEND (no guest agent). */
export type HeldBy = 'fsfreeze' | 'suspend' | 'none';

/**
 * Runs `fn` with the guest held still as `mode` asks, and always lets it go again (thaw or
 * resume), also when `fn` fails. AGENT without a working guest agent falls back to SUSPEND and
 * says so in the log, as OpenNebula's live snapshot does (freeze, else suspend). A guest that was
 * already paused is left paused.
 */
export async function withGuestHeld<T>(
  domain: string,
  mode: FreezeMode,
  opts: VirshOptions & { log: Logger },
  fn: (heldBy: HeldBy) => Promise<T>,
): Promise<T> {
  // The release must run even after the caller's signal fired: it gets its own, unbounded by it.
  const release: VirshOptions = { uri: opts.uri, what: opts.what };
  let heldBy: HeldBy = 'none';
  if (mode === 'AGENT') {
    try {
      await virsh(['domfsfreeze', domain], opts);
      heldBy = 'fsfreeze';
    } catch (err) {
      opts.log.warn(
        { domain, err: (err as Error).message },
        'FS_FREEZE=AGENT but the guest agent did not freeze the filesystems; suspending the guest instead',
      );
      heldBy = await suspend(domain, opts);
    }
  } else if (mode === 'SUSPEND') {
    heldBy = await suspend(domain, opts);
  }
  try {
    return await fn(heldBy);
  } finally {
    if (heldBy === 'fsfreeze') {
      await virsh(['domfsthaw', domain], release).catch((err: unknown) =>
        opts.log.error(
          { domain, err: (err as Error).message },
          'domfsthaw failed: the guest may stay frozen',
        ),
      );
    } else if (heldBy === 'suspend') {
      await virsh(['resume', domain], release).catch((err: unknown) =>
        opts.log.error({ domain, err: (err as Error).message }, 'resume failed: the guest stays paused'),
      );
    }
  }
}

async function suspend(domain: string, opts: VirshOptions): Promise<HeldBy> {
  const state = (await virsh(['domstate', domain], opts)).trim();
  if (state === 'paused') return 'none';
  await virsh(['suspend', domain], opts);
  return 'suspend';
}
