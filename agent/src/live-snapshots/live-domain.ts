import { realpath } from 'node:fs/promises';
import { StorageError } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import {
  type DomainDisk,
  checkDomainName,
  checkTarget,
  liveDomain,
  requireRunning,
} from '../libvirt/domain.js';
import { type FreezeMode, freezeModeOf } from '../libvirt/freeze.js';
import type { VirshOptions } from '../libvirt/virsh.js';
import type { FreezeMode as WireFreezeMode } from '../../../proto/gen/onestorage/agent/v1/agent.js';

/** A validated LiveDisk request field: which running domain and disk a live action works on. */
export interface LiveTarget {
  readonly domain: string;
  readonly target: string;
  readonly freeze: FreezeMode;
  /** virsh options with the caller's message prefix and signal. */
  readonly virsh: VirshOptions;
  readonly log: Logger;
}

export interface LiveFields {
  domain: string;
  target: string;
  freeze: WireFreezeMode;
}

export function liveTarget(
  live: LiveFields,
  opts: { uri: string; what: string; signal: AbortSignal; log: Logger },
): LiveTarget {
  return {
    domain: checkDomainName(live.domain, opts.what),
    target: checkTarget(live.target, opts.what),
    freeze: freezeModeOf(live.freeze, opts.what),
    virsh: { uri: opts.uri, what: opts.what, signal: opts.signal },
    log: opts.log,
  };
}

/**
 * The running domain's disks (one dumpxml); DOMAIN_NOT_FOUND for an unknown domain,
 * DOMAIN_NOT_RUNNING (with its state) for one that is defined but not running.
 */
export async function runningDisks(t: LiveTarget): Promise<DomainDisk[]> {
  const { running, disks } = await liveDomain(t.domain, t.virsh);
  if (!running) await requireRunning(t.domain, t.virsh);
  return disks;
}

/**
 * The domain's disk `target`, checked to be the disk the request names: its active layer must be
 * the file `diskFile` leads to (the disk.N symlink's target), so a live action never works on
 * another VM's or another disk's file because oned's TARGET and the path disagreed.
 */
export async function matchingDisk(
  t: LiveTarget,
  diskFile: string,
  disks: readonly DomainDisk[],
): Promise<DomainDisk> {
  const disk = disks.find((d) => d.target === t.target);
  if (!disk) {
    const have = disks.map((d) => d.target).join(', ') || 'none';
    throw new StorageError(
      'NOT_FOUND',
      `${t.virsh.what}: domain ${t.domain} has no file disk ${t.target} (it has: ${have})`,
    );
  }
  const [running, expected] = await Promise.all([realOrSelf(disk.source), realOrSelf(diskFile)]);
  if (running !== expected) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${t.virsh.what}: ${t.target} of ${t.domain} runs on ${disk.source}, not on this disk's ${diskFile}`,
    );
  }
  return disk;
}

async function realOrSelf(path: string): Promise<string> {
  return realpath(path).catch(() => path);
}

/** `vda[3]`: a layer of the disk's live chain by libvirt's index, as blockcommit/blockpull take it. */
export function layerRef(disk: DomainDisk, position: number): string {
  const index = disk.indices[position];
  if (index === undefined || !Number.isInteger(index)) {
    throw new StorageError('BAD_LAYOUT', `libvirt reports no index for layer ${position} of ${disk.target}`);
  }
  return `${disk.target}[${index}]`;
}
