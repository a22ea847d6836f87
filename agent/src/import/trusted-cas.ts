import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** Where distributions keep the system's CA bundle (Debian/Ubuntu, then RHEL and friends). */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

/**
 * The CAs an https image server's certificate may chain to: Node's built-in list, the system's
 * bundle (with whatever the operator added to it), and the cloud's own CA, so an agent's export
 * URL or an internal mirror signed by it verifies too. Never "insecure": OpenNebula's downloader
 * passes curl -k; we verify.
 */
export function trustedCas(cloudCa: Buffer): Array<string | Buffer> {
  const out: Array<string | Buffer> = [...rootCertificates];
  for (const bundle of SYSTEM_BUNDLES) {
    try {
      out.push(readFileSync(bundle));
      break;
    } catch {
      // Not this distribution's place.
    }
  }
  out.push(cloudCa);
  return out;
}
