// Certificates with a chosen validity window, for the status and doctor tests: one that expires in
// ten days, one that has already expired. `pki issue` always gives 825 days and openssl 3.0's `req`
// and `x509` only count days from now, so these go through `openssl ca`, whose -startdate and
// -enddate take any time. Same key, same subject, same extensions as `pki issue` writes.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROLE_UNITS, type CertificateRole } from '../../common/src/certificate-role.js';
import { pkiFiles } from '../../common/src/pki/pki.js';

const run = promisify(execFile);
const OPENSSL_TIMEOUT_MS = 30_000;

/** YYYYMMDDHHMMSSZ (GeneralizedTime), as openssl ca's -startdate and -enddate take it. */
function asn1Time(ms: number): string {
  return `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/**
 * Replaces `name`'s certificate in the PKI directory `dir` (its key kept) by one valid from
 * `notBeforeMs` to `notAfterMs`, signed by the same CA.
 */
export async function reissueWithValidity(
  dir: string,
  name: string,
  role: CertificateRole,
  notBeforeMs: number,
  notAfterMs: number,
): Promise<void> {
  const files = pkiFiles(dir, name);
  const work = await mkdtemp(join(tmpdir(), 'cert-validity-'));
  const openssl = (args: string[]) =>
    run('openssl', args, { env: { ...process.env, LANG: 'C' }, timeout: OPENSSL_TIMEOUT_MS });
  try {
    const conf = join(work, 'ca.cnf');
    await writeFile(join(work, 'index.txt'), '');
    await writeFile(
      conf,
      [
        '[ca]',
        'default_ca = test_ca',
        '[test_ca]',
        `database = ${join(work, 'index.txt')}`,
        `new_certs_dir = ${work}`,
        'rand_serial = yes',
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'copy_extensions = copy',
        '[any]',
        'organizationalUnitName = supplied',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    const csr = join(work, 'req.csr');
    await openssl(
      ['req', '-new', '-key', files.key, '-subj', `/OU=${ROLE_UNITS[role]}/CN=${name}`, '-out', csr]
        .concat(['-addext', `subjectAltName=DNS:${name},IP:127.0.0.1`])
        .concat(['-addext', 'extendedKeyUsage=serverAuth,clientAuth'])
        .concat([
          '-addext',
          'basicConstraints=critical,CA:FALSE',
          '-addext',
          'keyUsage=critical,digitalSignature',
        ]),
    );
    await openssl(
      ['ca', '-batch', '-notext', '-config', conf, '-cert', files.ca, '-keyfile', join(dir, 'ca.key')]
        .concat(['-startdate', asn1Time(notBeforeMs), '-enddate', asn1Time(notAfterMs)])
        .concat(['-in', csr, '-out', files.cert]),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
