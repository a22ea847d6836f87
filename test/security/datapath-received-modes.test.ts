// Security review, class 4 (docs/security.md#the-attack-tests): received files get OpenNebula's modes (agent/src/files/modes.ts), never the
// sender's bits: a world-writable or setuid file on one host must not arrive so on another.
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIRECTORY_MODE, DISK_FILE_MODE } from '../../agent/src/files/modes.js';
import { transfer, useTransferPair } from '../support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o7777;

describe('datapath: received file modes (security review, class 4)', () => {
  it('a 0777 file and a setuid file arrive as DISK_FILE_MODE, directories as DIRECTORY_MODE', async () => {
    const single = join(pair.rootA, '0', 'open.raw');
    await writeFile(single, 'data');
    await chmod(single, 0o777);
    await transfer(pair.a, 'host-a', '0/open.raw', pair.b, '0/open.raw');
    expect(await modeOf(join(pair.rootB, '0', 'open.raw'))).toBe(DISK_FILE_MODE);

    const vm = join(pair.rootA, '0', '90');
    await mkdir(join(vm, 'disk.0.snap'), { recursive: true });
    await writeFile(join(vm, 'disk.0.snap', '0'), 'snap');
    await writeFile(join(vm, 'suid'), 'x');
    await chmod(join(vm, 'suid'), 0o4777);
    await chmod(join(vm, 'disk.0.snap', '0'), 0o666);
    await chmod(join(vm, 'disk.0.snap'), 0o777);
    await chmod(vm, 0o700);
    await transfer(pair.a, 'host-a', '0/90', pair.b, '0/90');
    const dvm = join(pair.rootB, '0', '90');
    expect(await modeOf(join(dvm, 'suid'))).toBe(DISK_FILE_MODE);
    expect(await modeOf(join(dvm, 'disk.0.snap', '0'))).toBe(DISK_FILE_MODE);
    expect(await modeOf(join(dvm, 'disk.0.snap'))).toBe(DIRECTORY_MODE);
    expect(await modeOf(dvm)).toBe(DIRECTORY_MODE);
  });
});
