import { basename } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { domainLockKey } from '../locks/path-locks.js';
import { type StoredNames, storedNames } from '../paths/stored-name.js';
import type { ChainScope } from '../qemu/layer-places.js';
import {
  BackingStyle as WireBackingStyle,
  type ImageFormat,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ImageFormat as QemuFormat } from '../qemu/qemu-img.js';
import type { BackingStyle } from '../snapshots/qcow2-snapshots.js';
import { formatName } from './image-format.js';
import { type AgentContext, where } from './context.js';
import { enumName, requirePath } from './validate.js';

/** The contract's backing styles and the agent's names for them (snapshots/qcow2-snapshots.ts). */
const BACKING_STYLES: ReadonlyMap<WireBackingStyle, BackingStyle> = new Map([
  [WireBackingStyle.BACKING_STYLE_RELATIVE, 'relative'],
  [WireBackingStyle.BACKING_STYLE_BARE, 'bare'],
]);

/** The fields the three snapshot requests share. */
export interface SnapshotFields {
  diskPath: string;
  snapId: number;
  format: ImageFormat;
  snapDir: string;
  backingStyle: WireBackingStyle;
}

/** A validated, resolved snapshot request: local paths inside the roots, and the message prefix. */
export interface ResolvedSnapshot {
  readonly id: number;
  readonly format: QemuFormat;
  readonly style: BackingStyle;
  /** disk.N itself (a symlink is not followed). */
  readonly disk: string;
  /** disk.N in oned's view: what it leads to is read under the locks (LockedSnapshot). */
  readonly diskPath: string;
  readonly snapDir: string;
  readonly short: string;
  /** "host01:/var/lib/one/datastores/0/42/disk.0 (snapshot 3)". */
  readonly here: string;
  /** "snapshot create " + here: the start of every message. */
  readonly what: string;
  /** The agent's roots: every chain is validated against them before it is read (safe-chain.ts). */
  readonly scope: ChainScope;
  /** How link texts and backing names are written and read (paths/stored-name.ts). */
  readonly names: StoredNames;
}

/**
 * Validates the shared fields (naming the bad one), defaults snap_dir to `<disk_path>.snap`, and
 * resolves every path through the roots: the disk's final symlink target and the snap dir must lie
 * inside them too. `action` is "snapshot create" etc.; `styleRequired` for calls that write names.
 */
export async function resolveSnapshot(
  agent: AgentContext,
  action: string,
  req: SnapshotFields,
  styleRequired: boolean,
): Promise<ResolvedSnapshot> {
  const diskPath = requirePath(agent, action, 'disk_path', req.diskPath);
  if (!Number.isSafeInteger(req.snapId) || req.snapId < 0) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${action} on ${agent.name}: snap_id must be a non-negative integer`,
    );
  }
  const format = formatName(agent, action, 'format', req.format);
  let style: BackingStyle = 'relative';
  if (
    req.backingStyle !== WireBackingStyle.BACKING_STYLE_UNSPECIFIED ||
    (styleRequired && format === 'qcow2')
  ) {
    style = enumName(agent, action, 'backing_style', req.backingStyle, BACKING_STYLES);
  }
  const snapDirPath =
    req.snapDir === '' ? `${diskPath}.snap` : agent.roots.normalize(req.snapDir, 'snap_dir');
  const disk = await agent.roots.resolve(diskPath, 'disk_path');
  const snapDir = await agent.roots.resolveTarget(snapDirPath, 'snap_dir');
  const here = `${where(agent, diskPath)} (snapshot ${req.snapId})`;
  const what = `${action} ${here}`;
  return {
    id: req.snapId,
    format,
    style,
    disk,
    diskPath,
    snapDir,
    short: basename(snapDir),
    here,
    what,
    scope: agent.roots,
    names: storedNames(agent.roots),
  };
}

/** A snapshot request inside its critical section: what disk.N leads to now. */
export interface LockedSnapshot extends ResolvedSnapshot {
  /** What disk.N leads to, followed to the end (the raw disk's file; qcow2: the active layer). */
  readonly diskFile: string;
}

/**
 * Runs a snapshot RPC's work under the locks of the disk and its snap dir (every snapshot call
 * takes both) and, for a live call, of its domain (domainLockKey: live actions on two disks of one
 * domain take turns too), with the call's signal for the work and for the wait. Everything that
 * depends on the disk's state is read inside: disk.N's target here, the domain's disks and the
 * chain by the work itself, so a call that waited behind another sees what that one left.
 */
export function withSnapshotLocks<T>(
  agent: AgentContext,
  s: ResolvedSnapshot,
  signal: AbortSignal,
  work: (locked: LockedSnapshot, signal: AbortSignal) => Promise<T>,
  domain?: string,
): Promise<T> {
  const keys = domain === undefined ? [s.disk, s.snapDir] : [s.disk, s.snapDir, domainLockKey(domain)];
  return agent.locks.withLock(
    keys,
    s.what,
    async () => {
      const diskFile = await agent.roots.resolveTarget(s.diskPath, 'disk_path');
      return work({ ...s, diskFile }, signal);
    },
    signal,
  );
}
