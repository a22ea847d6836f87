// Why an agent does not answer, in words an operator can act on. gRPC reports a failed connection
// as UNAVAILABLE with whatever its last error was; one plain TLS handshake with the same
// certificates (ours presented, theirs read but not trusted blindly) tells a stopped agent from an
// expired certificate, a certificate of another CA or another name, or an agent refusing ours.
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';
import { certificateExpiry } from '../../../common/src/certificate-expiry.js';
import { oneLine } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import type { AgentEndpoint } from '../../../coordinator/src/config.js';

export interface TlsDiagnosis {
  /** One line: what is wrong with reaching this agent. */
  why: string;
  /** The agent's certificate expiry, when the handshake got that far. */
  peerNotAfterMs?: number;
  /** The agent's certificate has expired (the handshake refuses it). */
  peerExpired: boolean;
}

/**
 * The probe follows a gRPC call that already waited: a host that drops packets gets this much more,
 * not a second full deadline.
 */
export const TLS_PROBE_MAX_MS = 5_000;

/** What node's TLS calls a certificate that does not chain to the CA we trust. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

export function diagnoseTls(
  agent: AgentEndpoint,
  tls: TlsMaterial,
  deadlineMs: number,
): Promise<TlsDiagnosis> {
  const timeoutMs = Math.min(deadlineMs, TLS_PROBE_MAX_MS);
  const at = agent.endpoint.lastIndexOf(':');
  const host = agent.endpoint.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(agent.endpoint.slice(at + 1));
  const where = `at ${agent.endpoint}`;
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      servername: agent.certName,
      ALPNProtocols: ['h2'],
      // Read the certificate whatever it is, and judge it here, to say what is wrong with it.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    const done = (d: TlsDiagnosis): void => {
      socket.destroy();
      resolve(d);
    };
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const notAfterMs = peer.valid_to ? Date.parse(peer.valid_to) : undefined;
      const known = notAfterMs === undefined ? {} : { peerNotAfterMs: notAfterMs };
      const code = String(socket.authorizationError ?? '');
      if (code === 'CERT_HAS_EXPIRED' && notAfterMs !== undefined) {
        const expiry = certificateExpiry(notAfterMs, Date.now());
        return done({
          why: `its certificate ${expiry.text}: the TLS handshake refuses it (CERT_HAS_EXPIRED) ${where}`,
          ...known,
          peerExpired: true,
        });
      }
      if (code === 'CERT_NOT_YET_VALID') {
        return done({
          why: `its certificate is not valid yet (clock skew?) ${where}`,
          ...known,
          peerExpired: false,
        });
      }
      if (UNTRUSTED.has(code)) {
        return done({
          why: `its certificate is not signed by this cloud's CA (${code}) ${where}`,
          ...known,
          peerExpired: false,
        });
      }
      if (code !== '')
        return done({ why: `its certificate is refused (${code}) ${where}`, ...known, peerExpired: false });
      const wrongName = checkServerIdentity(agent.certName, peer as PeerCertificate);
      if (wrongName) {
        return done({
          why: `its certificate does not carry the name ${agent.certName} (${oneLine(wrongName.message)}) ${where}`,
          ...known,
          peerExpired: false,
        });
      }
      // The handshake is fine from our side; the agent may still refuse our certificate after it
      // (TLS 1.3 checks the client's certificate after the client considers itself connected).
      socket.once('error', (err) =>
        done({
          why: `the agent refuses our certificate (${oneLine(err.message)}) ${where}`,
          ...known,
          peerExpired: false,
        }),
      );
      socket.once('close', () =>
        done({ why: `TLS works ${where}, but gRPC does not answer`, ...known, peerExpired: false }),
      );
      socket.setTimeout(timeoutMs, () =>
        done({ why: `TLS works ${where}, but gRPC does not answer`, ...known, peerExpired: false }),
      );
    });
    socket.once('timeout', () =>
      done({ why: `no answer within ${timeoutMs} ms ${where}`, peerExpired: false }),
    );
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') {
        return done({
          why: `connection refused ${where}: is one-storage-agent running there?`,
          peerExpired: false,
        });
      }
      if (/alert/i.test(err.message)) {
        return done({
          why: `the agent refuses our certificate (${oneLine(err.message)}) ${where}`,
          peerExpired: false,
        });
      }
      done({ why: `${oneLine(err.message)} ${where}`, peerExpired: false });
    });
  });
}
