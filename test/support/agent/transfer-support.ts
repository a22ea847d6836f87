/**
 * Helpers shared by the transfer tests (not shipped code): real certificates from the project's PKI
 * code, roots that stand in for /var/lib/one/datastores, and file facts checked with real tools.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CertificateRole } from '../../../common/src/certificate-role.js';
import { StorageError } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { initCa, issueCertificate } from '../../../common/src/pki/pki.js';
import { TransferService } from '../../../agent/src/transfer/transfer-service.js';

export const ONED_ROOT = '/var/lib/one/datastores';

export const silentLogger = pino({ level: process.env['TRANSFER_TEST_LOG'] ?? 'silent' });

export async function scratchDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `onestorage-${tag}-`));
}

/** TLS material for `name` from the CA in `pkiDir` (created on first use); agents get role agent. */
export async function makeTls(
  pkiDir: string,
  name: string,
  role: CertificateRole = 'agent',
): Promise<TlsMaterial> {
  await initCa(pkiDir);
  const { files } = await issueCertificate(pkiDir, name, ['127.0.0.1'], false, role);
  return { ca: await readFile(files.ca), cert: await readFile(files.cert), key: await readFile(files.key) };
}

/** The simplest confinement that behaves like the agent's: one root, no "..", absolute only. */
export function rootResolver(localRoot: string): (onedPath: string, field: string) => Promise<string> {
  return async (onedPath, field) => {
    if (!onedPath.startsWith(`${ONED_ROOT}/`) || onedPath.split('/').includes('..')) {
      throw new StorageError('PATH_OUTSIDE_ROOTS', `${field} ${onedPath} is outside the datastore roots`);
    }
    return join(localRoot, onedPath.slice(ONED_ROOT.length + 1));
  };
}

export async function startService(
  name: string,
  tls: TlsMaterial,
  localRoot: string,
  extra: { plaintextData?: boolean; now?: () => number } = {},
): Promise<TransferService> {
  await mkdir(localRoot, { recursive: true });
  const service = new TransferService({
    name,
    tls,
    listen: '127.0.0.1:0',
    resolve: rootResolver(localRoot),
    realRoots: async () => [await realpath(localRoot)],
    logger: silentLogger,
    ...extra,
  });
  await service.start();
  return service;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** Writes a recognisable pattern at each [offset, length] with qemu-io, as a guest would. */
export async function qemuWrite(
  path: string,
  format: 'raw' | 'qcow2',
  writes: readonly [number, number, number][],
): Promise<void> {
  const args = ['-f', format];
  for (const [offset, length, pattern] of writes) args.push('-c', `write -P ${pattern} ${offset} ${length}`);
  await runTool('qemu-io', [...args, path]);
}
