import { X509Certificate } from 'node:crypto';

/**
 * What a certificate of the cloud may do (docs/security.md): a `coordinator` certificate calls the
 * agents' control RPCs; an `agent` certificate serves its own agent and pulls from other agents over
 * the data path, with a ticket issued for its name, and nothing else.
 */
export type CertificateRole = 'coordinator' | 'agent';
/** Certificate names (CN and DNS subjectAltName): what a hostname may hold; they also name files. */
export const CERTIFICATE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
export const CERTIFICATE_ROLES: readonly CertificateRole[] = ['coordinator', 'agent'];

/**
 * The role is the subject's organizational unit, signed by the cloud's CA with the rest of the
 * subject: readable by `openssl x509 -subject`, by node's X509Certificate and by a TLS socket's
 * peer certificate without parsing any ASN.1 ourselves (a private extension would need both an OID
 * of our own and a DER parser).
 */
export const ROLE_UNITS: Readonly<Record<CertificateRole, string>> = {
  coordinator: 'one-storage-coordinator',
  agent: 'one-storage-agent',
};

/**
 * A certificate's role: one of ours, `none` (issued before roles, or by hand) or `conflicting`
 * (both roles: never issued by `pki issue`, trusted for neither).
 */
export type RoleFinding = CertificateRole | 'none' | 'conflicting';

export interface CertificateIdentity {
  /** The subject's CN (the agent's OpenNebula name, or "coordinator"). */
  name: string;
  role: RoleFinding;
}

/** A certificate subject as node parses it (tls peer certificates, X509Certificate.toLegacyObject()). */
export interface ParsedSubject {
  CN?: string | string[] | undefined;
  OU?: string | string[] | undefined;
}

export function identityOfSubject(subject: ParsedSubject | undefined): CertificateIdentity {
  const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : [v].flat());
  const units = all(subject?.OU);
  const roles = CERTIFICATE_ROLES.filter((role) => units.includes(ROLE_UNITS[role]));
  const [first, second] = roles;
  return {
    name: all(subject?.CN).join(',') || '(no CN)',
    role: first === undefined ? 'none' : second === undefined ? first : 'conflicting',
  };
}

/** The identity of a PEM or DER certificate (throws on anything that is not a certificate). */
export function identityOfCertificate(cert: Buffer | X509Certificate): CertificateIdentity {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return identityOfSubject(x509.toLegacyObject().subject as ParsedSubject);
}

/** The command that issues a certificate with `role` for `name`; the fix every role refusal names. */
export function pkiIssueCommand(role: CertificateRole, name: string, dir: string, force: boolean): string {
  return `one-storage pki issue --role ${role} --name ${name} --dir ${dir}${force ? ' --force' : ''}`;
}
