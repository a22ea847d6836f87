/**
 * Acting as any certificate of a stack's PKI, for the identity tests (test/security/identity-*):
 * a raw gRPC client of one agent presenting a chosen certificate, and the role-less certificates
 * `one-storage pki issue` made before certificates had roles.
 */
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { channelOptions, clientCredentials, loadTls, type TlsFiles } from '../../common/src/tls.js';
import { runTool } from '../../common/src/tools/run-tool.js';
import type { Stack } from '../../cli/src/demo/stack.js';
import { AgentServiceClient } from '../../proto/gen/onestorage/agent/v1/agent.js';

/** A client of `host`'s agent in `stack` presenting `cert` (default: the stack's certificate named `as`). */
export function agentClientAs(stack: Stack, host: string, as: string | TlsFiles): AgentServiceClient {
  const files = typeof as === 'string' ? pkiFiles(stack.pkiDir, as) : as;
  return new AgentServiceClient(
    `127.0.0.1:${stack.agentPort(host)}`,
    clientCredentials(loadTls(files, 'test')),
    channelOptions(host),
  );
}

/**
 * A certificate for `name` signed by the CA in `pkiDir`, made exactly as `pki issue` made them
 * before roles existed (no OU): what an existing deployment still has. Written to `outDir`, so the
 * PKI directory's own certificate of that name is left alone.
 */
export async function issueLegacyCertificate(
  pkiDir: string,
  name: string,
  outDir: string,
): Promise<TlsFiles> {
  await mkdir(outDir, { recursive: true });
  const scratch = await mkdtemp(join(outDir, '.legacy-'));
  const files = {
    ca: join(pkiDir, 'ca.crt'),
    cert: join(outDir, `${name}.crt`),
    key: join(outDir, `${name}.key`),
  };
  try {
    const key = join(scratch, 'key.pem');
    const cert = join(scratch, 'cert.pem');
    await runTool('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ]);
    await runTool('openssl', [
      ...['req', '-x509', '-new', '-key', key, '-CA', files.ca, '-CAkey', join(pkiDir, 'ca.key')],
      ...['-subj', `/CN=${name}`, '-days', '30', '-sha256', '-out', cert],
      ...['-addext', `subjectAltName=DNS:${name},IP:127.0.0.1`],
      ...['-addext', 'extendedKeyUsage=serverAuth,clientAuth'],
      ...['-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature'],
    ]);
    await rename(key, files.key);
    await rename(cert, files.cert);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return files;
}
