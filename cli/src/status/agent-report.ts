// What `one-storage status` makes of one agent's Health answer: its state (ok, WARNING, FAILED),
// the problems that decide it, and the facts shown on its line and in --json.
import { certificateExpiry } from '../../../common/src/certificate-expiry.js';
import type { HealthResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { humanAge, humanBytes } from './human-units.js';
import {
  DATASTORE_FAILED_USED_PERCENT,
  DATASTORE_WARNING_USED_PERCENT,
  SKEW_FAILED_MS,
  SKEW_WARNING_MS,
} from './status-thresholds.js';

export type State = 'ok' | 'warning' | 'failed';

export interface Finding {
  level: 'warning' | 'failed';
  text: string;
}

export interface DatastoreReport {
  location: string;
  root: string;
  ok: boolean;
  detail: string;
  totalBytes: number;
  freeBytes: number;
  usedPercent: number;
}

export interface AgentReport {
  name: string;
  state: State;
  reachable: boolean;
  findings: Finding[];
  /** The line's facts after the findings. */
  facts: string[];
  version?: string;
  certificate?: { notAfterMs: number; subject: string; state: string; daysLeft: number };
  datastores?: DatastoreReport[];
  libvirt?: { ok: boolean; disabled: boolean; detail: string };
  monitoring?: { mode: string; lastDeliveryMs: number; lastError: string };
  /** The agent's clock minus ours, at the middle of the round trip (ms). */
  skewMs?: number;
}

/** The worst level among `findings`. */
export function stateOf(findings: readonly Finding[]): State {
  if (findings.some((f) => f.level === 'failed')) return 'failed';
  return findings.length > 0 ? 'warning' : 'ok';
}

/** One agent's report from its Health answer, received between `sentMs` and `receivedMs`. */
export function reportFromHealth(
  name: string,
  h: HealthResponse,
  sentMs: number,
  receivedMs: number,
): AgentReport {
  const findings: Finding[] = [];
  const facts: string[] = [`version ${h.version}`];
  if (h.name !== name) findings.push({ level: 'failed', text: `answered as "${h.name}"` });

  const expiry = certificateExpiry(h.certificateNotAfterMs, receivedMs);
  if (expiry.state === 'expired') findings.push({ level: 'failed', text: `certificate ${expiry.text}` });
  else if (expiry.state === 'warning')
    findings.push({ level: 'warning', text: `certificate ${expiry.text}` });
  else facts.push(`certificate ${expiry.text}`);

  const datastores = h.datastores.map((d) => datastoreReport(d, findings, facts));

  if (h.libvirtDisabled) facts.push(`libvirt ${h.libvirtDetail}`);
  else if (h.libvirtOk) facts.push('libvirt ok');
  else findings.push({ level: 'failed', text: `libvirt: ${h.libvirtDetail}` });

  facts.push(`monitoring ${h.monitoringMode || 'unknown'}${monitordDelivery(h, receivedMs)}`);
  if (h.monitoringMode === 'push' && h.lastMonitordError !== '') {
    findings.push({ level: 'warning', text: `monitord: ${h.lastMonitordError}` });
  }

  const skewMs = Math.round(h.nowMs - (sentMs + receivedMs) / 2);
  const skew = Math.abs(skewMs);
  if (skew > SKEW_FAILED_MS) findings.push({ level: 'failed', text: `clock ${skewText(skewMs)}` });
  else if (skew > SKEW_WARNING_MS) findings.push({ level: 'warning', text: `clock ${skewText(skewMs)}` });

  return {
    name,
    state: stateOf(findings),
    reachable: true,
    findings,
    facts,
    version: h.version,
    certificate: {
      notAfterMs: h.certificateNotAfterMs,
      subject: h.certificateSubject,
      state: expiry.state,
      daysLeft: expiry.daysLeft,
    },
    datastores,
    libvirt: { ok: h.libvirtOk, disabled: h.libvirtDisabled, detail: h.libvirtDetail },
    monitoring: {
      mode: h.monitoringMode,
      lastDeliveryMs: h.lastMonitordDeliveryMs,
      lastError: h.lastMonitordError,
    },
    skewMs,
  };
}

export function skewText(skewMs: number): string {
  return `${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs > 0 ? 'ahead of' : 'behind'} this host`;
}

function datastoreReport(
  d: HealthResponse['datastores'][number],
  findings: Finding[],
  facts: string[],
): DatastoreReport {
  const usedPercent = d.totalBytes > 0 ? Math.round((100 * (d.totalBytes - d.freeBytes)) / d.totalBytes) : 0;
  const space = `${d.location} ${humanBytes(d.freeBytes)} free of ${humanBytes(d.totalBytes)}`;
  if (!d.ok) findings.push({ level: 'failed', text: `${d.location}: ${d.detail}` });
  else if (usedPercent >= DATASTORE_FAILED_USED_PERCENT)
    findings.push({ level: 'failed', text: `${space} (${usedPercent} % used)` });
  else if (usedPercent >= DATASTORE_WARNING_USED_PERCENT)
    findings.push({ level: 'warning', text: `${space} (${usedPercent} % used)` });
  else facts.push(space);
  return { ...d, usedPercent };
}

function monitordDelivery(h: HealthResponse, nowMs: number): string {
  if (h.monitoringMode !== 'push') return '';
  return h.lastMonitordDeliveryMs > 0
    ? ` (last delivery to monitord ${humanAge(nowMs - h.lastMonitordDeliveryMs)})`
    : ' (nothing delivered to monitord yet)';
}
