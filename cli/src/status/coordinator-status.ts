// The coordinator's part of `one-storage status`: its certificate (role and expiry) and whether it
// answers on its shim socket: a `ping` control request (coordinator/src/jobs/control-request.ts),
// answered by the daemon itself with its version and the driver calls it runs, never journaled.
import { identityOfCertificate } from '../../../common/src/certificate-role.js';
import { certificateExpiry, certificateFacts } from '../../../common/src/certificate-expiry.js';
import { oneLine } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { CoordinatorConfig } from '../../../coordinator/src/config.js';
import { controlRequest } from '../jobs/control-request.js';
import { stateOf, type AgentReport, type Finding } from './agent-report.js';

/** A coordinator that is up answers a ping at once. */
export const PING_TIMEOUT_MS = 3_000;

export async function coordinatorStatus(
  config: Readonly<CoordinatorConfig>,
  tls: TlsMaterial,
): Promise<AgentReport> {
  const findings: Finding[] = [];
  const facts: string[] = [];
  const ping = await pingCoordinator(config.socket);
  const socket = 'why' in ping ? ping.why : undefined;
  if ('why' in ping) findings.push({ level: 'failed', text: `socket ${config.socket}: ${ping.why}` });
  else facts.push(`socket ${config.socket} answers: version ${ping.version}, ${ping.running} calls running`);
  let cert: { notAfterMs: number; subject: string };
  try {
    cert = certificateFacts(tls.cert);
  } catch (err) {
    const why = oneLine(err instanceof Error ? err.message : String(err));
    findings.push({
      level: 'failed',
      text: `certificate ${config.tls.cert} is not a PEM certificate (${why})`,
    });
    return { name: 'coordinator', state: 'failed', reachable: socket === undefined, findings, facts };
  }
  const role = identityOfCertificate(tls.cert).role;
  const expiry = certificateExpiry(cert.notAfterMs, Date.now());
  if (role !== 'coordinator')
    findings.push({ level: 'failed', text: `certificate has role ${role}, not coordinator` });
  if (expiry.state === 'ok') facts.push(`certificate ${expiry.text}`);
  else
    findings.push({
      level: expiry.state === 'expired' ? 'failed' : 'warning',
      text: `certificate ${expiry.text}`,
    });
  return {
    name: 'coordinator',
    state: stateOf(findings),
    reachable: socket === undefined,
    findings,
    facts,
    certificate: {
      notAfterMs: cert.notAfterMs,
      subject: cert.subject,
      state: expiry.state,
      daysLeft: expiry.daysLeft,
    },
  };
}

/** The coordinator's answer to a ping, or why there is none (one line). */
export async function pingCoordinator(
  path: string,
): Promise<{ version: string; running: number } | { why: string }> {
  try {
    const reply = await controlRequest(path, 'ping', [], PING_TIMEOUT_MS);
    if (reply.exitCode !== 0) return { why: oneLine(reply.stderr.join(' ')) || `exit ${reply.exitCode}` };
    const answer = JSON.parse(reply.stdout) as { version?: unknown; running?: unknown };
    return { version: String(answer.version), running: Number(answer.running) };
  } catch (err) {
    const message = oneLine(err instanceof Error ? err.message : String(err));
    if (/ENOENT/.test(message)) return { why: 'missing: is one-storage-coordinator running?' };
    if (/ECONNREFUSED/.test(message)) return { why: 'refused: is one-storage-coordinator running?' };
    if (/EACCES/.test(message)) return { why: 'permission denied: run as oneadmin or root' };
    return { why: message };
  }
}
