import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCa, issueCertificate, pkiFiles } from './pki.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pki-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pki files are written atomically', () => {
  it('init and issue leave only the CA and the pair, the keys the owner’s alone', async () => {
    expect((await initCa(dir)).created).toBe(true);
    expect((await issueCertificate(dir, 'host-a', ['127.0.0.1'])).created).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'host-a.crt', 'host-a.key']);
    for (const key of ['ca.key', 'host-a.key']) expect((await stat(join(dir, key))).mode & 0o777).toBe(0o600);
  });

  it('a failed re-issue leaves no temporary and the old certificate and key intact', async () => {
    await initCa(dir);
    const files = pkiFiles(dir, 'host-a');
    await issueCertificate(dir, 'host-a');
    const [cert, key] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8')]);
    // openssl makes the new key, then cannot sign with an unreadable CA key.
    await writeFile(join(dir, 'ca.key'), 'not a key');
    await expect(issueCertificate(dir, 'host-a', [], true)).rejects.toThrow(/issue a certificate for host-a/);
    expect(await readFile(files.cert, 'utf8')).toBe(cert);
    expect(await readFile(files.key, 'utf8')).toBe(key);
    expect((await readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'host-a.crt', 'host-a.key']);
  });
});
