import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import {
  CERTIFICATE_NAME_PATTERN,
  CERTIFICATE_ROLES,
  ROLE_UNITS,
  identityOfCertificate,
  type CertificateRole,
  type RoleFinding,
} from '../certificate-role.js';
import { StorageError } from '../errors.js';
import { writeAtomically } from '../files/atomic-file.js';
import { runTool } from '../tools/run-tool.js';

/** CA certificates outlive many host certificates. */
const CA_VALIDITY_DAYS = 3650;
/** Host certificates: about two years and a quarter, the usual ceiling for TLS leaf certificates. */
const HOST_VALIDITY_DAYS = 825;

export interface PkiFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Paths of the CA and of a host's certificate and key inside a PKI directory. */
export function pkiFiles(dir: string, name: string): PkiFiles {
  return { ca: join(dir, 'ca.crt'), cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** A new private key written by openssl at `path` (a temporary of writeAtomically), the owner's alone. */
async function newKey(path: string): Promise<void> {
  await runTool(
    'openssl',
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path],
    {
      what: 'create a private key',
    },
  );
  await chmod(path, 0o600);
}

/**
 * Creates the cloud's CA (ca.crt, ca.key) in `dir`. An existing CA is kept (created=false): every
 * certificate of the cloud hangs off it, so replacing it silently would cut every agent off.
 */
export async function initCa(
  dir: string,
): Promise<{ created: boolean; files: { cert: string; key: string } }> {
  const files = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  if (existsSync(files.cert) && existsSync(files.key)) return { created: false, files };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Each file is written atomically (common/src/files/atomic-file.ts): the key first, as the
  // certificate is made from it.
  await writeAtomically(files.key, newKey);
  await writeAtomically(files.cert, (tmpCert) =>
    runTool(
      'openssl',
      ['req', '-x509', '-new', '-key', files.key, '-sha256', '-days', String(CA_VALIDITY_DAYS)]
        .concat(['-subj', '/CN=one-storage CA', '-out', tmpCert])
        .concat([
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ]),
      { what: `create the CA in ${dir}` },
    ),
  );
  return { created: true, files };
}

/**
 * Issues a certificate for an agent or the coordinator, usable as TLS server and client (agents
 * are both: they serve gRPC and pull data from each other). The name goes in CN and as a DNS
 * subjectAltName; each address as an IP subjectAltName; the role as the subject's OU (see
 * common/src/certificate-role.ts). The role defaults to agent, the one that can do least: only a
 * coordinator certificate may call the agents' control RPCs. An existing certificate with the same
 * role is kept (created=false) unless `force` is set, so re-running a deployment changes nothing;
 * one with another role (or none, from before roles) is refused without `force`, naming it.
 */
export async function issueCertificate(
  dir: string,
  name: string,
  ips: readonly string[] = [],
  force = false,
  role: CertificateRole = 'agent',
): Promise<{ created: boolean; files: PkiFiles }> {
  if (!CERTIFICATE_NAME_PATTERN.test(name)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `pki issue: invalid --name "${name}": use letters, digits, "." and "-"`,
    );
  }
  if (!CERTIFICATE_ROLES.includes(role)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `pki issue: invalid --role "${String(role)}": use ${CERTIFICATE_ROLES.join(' or ')}`,
    );
  }
  for (const ip of ips) {
    if (isIP(ip) === 0)
      throw new StorageError('INVALID_ARGUMENT', `pki issue: --ip "${ip}" is not an IP address`);
  }
  const files = pkiFiles(dir, name);
  const caKey = join(dir, 'ca.key');
  if (!existsSync(files.ca) || !existsSync(caKey)) {
    throw new StorageError(
      'NOT_FOUND',
      `pki issue: no CA in ${dir} (run "one-storage pki init --dir ${dir}" first)`,
    );
  }
  if (!force && existsSync(files.cert) && existsSync(files.key)) {
    const existing = await roleOfFile(files.cert);
    if (existing === role) return { created: false, files };
    const what =
      existing === undefined
        ? 'but is not a certificate'
        : existing === 'none'
          ? 'with no role (issued before roles)'
          : `with role ${existing}`;
    throw new StorageError(
      'ALREADY_EXISTS',
      `pki issue: ${files.cert} exists ${what}, not ${role}; add --force to replace it`,
    );
  }
  const san = [`DNS:${name}`, ...ips.map((ip) => `IP:${ip}`)].join(',');
  // Both are built under temporaries beside them and renamed in, the key first: a failure leaves
  // neither temporary and the old pair as it was when making them fails (common/src/files/atomic-file.ts).
  await writeAtomically(files.cert, (tmpCert) =>
    writeAtomically(files.key, async (tmpKey) => {
      await newKey(tmpKey);
      await runTool(
        'openssl',
        ['req', '-x509', '-new', '-key', tmpKey, '-CA', files.ca, '-CAkey', caKey]
          .concat(['-subj', `/OU=${ROLE_UNITS[role]}/CN=${name}`])
          .concat(['-days', String(HOST_VALIDITY_DAYS), '-sha256', '-out', tmpCert])
          .concat(['-addext', `subjectAltName=${san}`, '-addext', 'extendedKeyUsage=serverAuth,clientAuth'])
          .concat([
            '-addext',
            'basicConstraints=critical,CA:FALSE',
            '-addext',
            'keyUsage=critical,digitalSignature',
          ]),
        { what: `issue a certificate for ${name}` },
      );
    }),
  );
  return { created: true, files };
}

/** The role of the certificate in `path`; undefined when it is not a readable certificate. */
async function roleOfFile(path: string): Promise<RoleFinding | undefined> {
  try {
    return identityOfCertificate(await readFile(path)).role;
  } catch {
    return undefined;
  }
}
