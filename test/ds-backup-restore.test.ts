import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '../cli/src/demo/run-action.js';
import { Stack } from '../cli/src/demo/stack.js';
import { writeDatastoreXml } from '../cli/src/demo/fake-oned/fixtures.js';
import { formatBackupUrl } from '../common/src/backups/backup-url.js';
import { actionData } from './support/ds-action-data.js';
import { type FabricatedChain, fabricateChain } from './support/backup-repo-chain.js';
import { dsAction, expectFailure, expectSuccess } from './support/ds-image-stack.js';
import { imagesIdentical, layout } from './support/files.js';

// Restoring from a grpc_backup datastore through the whole stack (docs/backups.md#pseudo-urls):
// a chain fabricated on backup01's repository, image datastore `cp` of each point's pseudo-URL,
// and increment_flatten (KEEP_LAST) run as oned runs it, then the kept points restored again.
const BACKUP_DS = 100;
const REPO = `/var/lib/one/datastores/${BACKUP_DS}`;
const IMAGE_DS = 1;
const MIB = 1024 * 1024;
const BIDS = ['2a0000000000', '2b0000000000', '2c0000000000', '2d0000000000'];
const POINTS = BIDS.map((bid, i) => ({
  bid,
  writes: [{ pattern: 0x21 + i, offset: i * MIB, length: MIB }],
}));
let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01', 'backup01'] });
  await writeDatastoreXml(stack.fixturesDir, {
    id: BACKUP_DS,
    type: 3,
    dsMad: 'grpc_backup',
    tmMad: '-',
    basePath: REPO,
    template: { GRPC_BACKUP_HOST: 'backup01' },
  });
});

afterAll(async () => {
  await stack?.stop();
});

const vmDirOf = (vm: number): string => stack.localPath('backup01', `${REPO}/${vm}`);
const work = (): string => join(stack.baseDir, 'work');

function urlOf(vm: number, chain: FabricatedChain, upTo: number, from = 0): string {
  const links = chain.bids.map((bid, inc) => ({ inc, bid })).slice(from, upTo + 1);
  return formatBackupUrl({
    dsId: BACKUP_DS,
    backupJobId: undefined,
    chain: links,
    path: `${REPO}/${vm}/${chain.bids[upTo]}/disk.0.${upTo}`,
  });
}

const cp = (id: number, path: string, bridges?: string) =>
  dsAction(
    stack,
    'cp',
    id,
    actionData({
      image: { id, path, format: 'raw', size: 4 },
      datastore: { id: IMAGE_DS, ...(bridges ? { template: { BRIDGE_LIST: bridges } } : {}) },
    }),
  );

/** cp of `url` as image `id`; checks it printed `<SOURCE> qcow2` and holds `expected`. */
async function restoreMatches(
  id: number,
  url: string,
  expected: string,
  host = 'frontend',
): Promise<boolean> {
  const out = expectSuccess(await cp(id, url, host === 'frontend' ? undefined : host)).trimEnd();
  const [source, format] = out.split(' ');
  expect(format).toBe('qcow2');
  return imagesIdentical(stack.localPath(host, source as string), 'qcow2', expected, 'raw');
}

describe('cp of a grpc_backup:// PATH', () => {
  it('registers each restore point with its exact bytes, on the front-end or a BRIDGE_LIST host', async () => {
    const chain = await fabricateChain(vmDirOf(6), join(work(), '6'), POINTS);
    for (let k = 0; k < BIDS.length; k++) {
      expect(await restoreMatches(200 + k, urlOf(6, chain, k), chain.expected[k] as string)).toBe(true);
    }
    expect(await restoreMatches(210, urlOf(6, chain, 3), chain.expected[3] as string, 'host01')).toBe(true);
  });

  it('a corrupted byte fails in one line naming the file, and nothing is left at SOURCE', async () => {
    const chain = await fabricateChain(vmDirOf(7), join(work(), '7'), POINTS);
    const victim = chain.files[1] as string;
    const bytes = await readFile(victim);
    const at = bytes.length - 4096;
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    await writeFile(victim, bytes);
    const base = stack.localPath('frontend', `/var/lib/one/datastores/${IMAGE_DS}`);
    const before = existsSync(base) ? layout(base) : [];
    const r = await cp(220, urlOf(7, chain, 2));
    expectFailure(
      r,
      new RegExp(
        `^cp failed: image 220: .*backup file backup01:${REPO}/7/${BIDS[1]}/disk\\.0\\.1 does not match its SHA256SUMS`,
      ),
    );
    expect(existsSync(base) ? layout(base) : []).toEqual(before);
  });

  it('refuses a URL whose path lies outside the backup datastore', async () => {
    const url = 'grpc_backup://100//0:2a0000000000/var/lib/one/datastores/1/6/2a0000000000/disk.0.0';
    expectFailure(
      await cp(221, url),
      /^cp failed: image 221: PATH names .* not in BASE_PATH \/var\/lib\/one\/datastores\/100 of backup datastore 100$/,
    );
  });
});

describe('increment_flatten', () => {
  const backupImage = (vm: number, bids: readonly string[]): string =>
    `<IMAGE><ID>300</ID><SOURCE>${bids[0]}</SOURCE><FORMAT>raw</FORMAT><VMS><ID>${vm}</ID></VMS>` +
    '<BACKUP_INCREMENTS>' +
    bids
      .map(
        (bid, i) =>
          `<INCREMENT><ID>${i}</ID><TYPE>${i === 0 ? 'FULL' : 'INCREMENT'}</TYPE><PARENT_ID>${i - 1}</PARENT_ID>` +
          `<SOURCE>${bid}</SOURCE><SIZE>4</SIZE><DATE>1700000000</DATE></INCREMENT>`,
      )
      .join('') +
    '</BACKUP_INCREMENTS><TEMPLATE/></IMAGE>';
  const flatten = (vm: number, keepLast: number) =>
    runAction(
      stack.remotesDir,
      'datastore',
      'grpc_backup',
      'increment_flatten',
      ['300'],
      actionData({
        image: backupImage(vm, BIDS),
        datastore: {
          id: BACKUP_DS,
          type: 3,
          basePath: REPO,
          template: { DS_MAD: 'grpc_backup', GRPC_BACKUP_HOST: 'backup01' },
        },
        extra: `<EXTRA_DATA><KEEP_LAST>${keepLast}</KEEP_LAST></EXTRA_DATA>`,
      }),
    );

  it('KEEP_LAST 2 of 4: prints what oned expects and the kept points still restore', async () => {
    const chain = await fabricateChain(vmDirOf(8), join(work(), '8'), POINTS);
    const out = expectSuccess(await flatten(8, 2));
    expect(out).toMatch(new RegExp(`^[1-9]\\d* 2:${BIDS[2]},3:${BIDS[3]}\\n$`));
    expect((await readdir(vmDirOf(8))).sort()).toEqual(BIDS.slice(2));
    // The first kept point is now a FULL: its URL names only itself.
    expect(await restoreMatches(230, urlOf(8, chain, 2, 2), chain.expected[2] as string)).toBe(true);
    expect(await restoreMatches(231, urlOf(8, chain, 3, 2), chain.expected[3] as string)).toBe(true);
    // A repeat (oned retried) finds the work done.
    expect(expectSuccess(await flatten(8, 2))).toBe(out);
  });

  it('prints nothing when there are no more increments than KEEP_LAST', async () => {
    await fabricateChain(vmDirOf(9), join(work(), '9'), POINTS);
    expect(expectSuccess(await flatten(9, 4))).toBe('');
    expect((await readdir(vmDirOf(9))).sort()).toEqual(BIDS);
  });
});
