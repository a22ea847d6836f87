// The coordinator's part of `one-storage status`: its certificate (role and expiry) and whether it
// answers on its shim socket. The socket carries one driver call per connection and has no ping:
// an accepted connection closed before any request is read is the cheapest sign of life, and the
// coordinator drops it without a log line or a journal row.
import { connect } from 'node:net';
import { identityOfCertificate } from '../../../common/src/certificate-role.js';
import { certificateExpiry, certificateFacts } from '../../../common/src/certificate-expiry.js';
import { oneLine } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { CoordinatorConfig } from '../../../coordinator/src/config.js';
import { stateOf, type AgentReport, type Finding } from './agent-report.js';

/** A UNIX socket accepts at once when someone listens on it. */
export const SOCKET_CONNECT_TIMEOUT_MS = 3_000;

export async function coordinatorStatus(
  config: Readonly<CoordinatorConfig>,
  tls: TlsMaterial,
): Promise<AgentReport> {
  const findings: Finding[] = [];
  const facts: string[] = [];
  const socket = await socketAnswers(config.socket);
  if (socket === undefined) facts.push(`socket ${config.socket} answers`);
  else findings.push({ level: 'failed', text: `socket ${config.socket}: ${socket}` });
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

/** undefined when something accepts a connection on `path`; else why not, one line. */
export function socketAnswers(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ path, timeout: SOCKET_CONNECT_TIMEOUT_MS });
    const done = (why: string | undefined): void => {
      socket.destroy();
      resolve(why);
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done(`no answer within ${SOCKET_CONNECT_TIMEOUT_MS} ms`));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return done('missing: is one-storage-coordinator running?');
      if (err.code === 'ECONNREFUSED') return done('refused: is one-storage-coordinator running?');
      if (err.code === 'EACCES') return done('permission denied: run as oneadmin or root');
      done(oneLine(err.message));
    });
  });
}
