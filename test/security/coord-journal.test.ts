// Security review, class 4 (docs/security.md#the-attack-tests): the journal keeps no secrets and is readable by its owner only. A real
// cross-host clone (a data-path ticket handed from one agent to another) is driven through the shims;
// then the SQLite file is opened directly and every text cell of every table is searched for a
// ticket (32 random bytes as hex). journal.db, -wal and -shm must be 0600, also for a journal left
// 0644 by an older coordinator.
import { chmodSync, existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../../cli/src/demo/demo-images.js';
import { runAction } from '../../cli/src/demo/run-action.js';
import { ONED_DATASTORE_LOCATION, Stack } from '../../cli/src/demo/stack.js';
import { Journal } from '../../coordinator/src/journal/journal.js';
import { writeVmXml } from '../../cli/src/demo/fake-oned/fixtures.js';
import { expectOk } from '../support/assertions.js';

const VM = 41;
const SOURCE = `${ONED_DATASTORE_LOCATION}/1/7e57000000000000000000000000000a`;
/** What a data-path ticket looks like (agent/src/transfer/tickets.ts): 32 bytes as hex. */
const TICKET_PATTERN = /[0-9a-f]{64}/;
const OWNER_ONLY = 0o600;

let stack: Stack;
let scratch: string;

beforeAll(async () => {
  stack = await Stack.start({ hosts: ['frontend', 'host01'] });
  scratch = await mkdtemp(join(tmpdir(), 'one-storage-journal-'));
  await makeImage(stack.localPath('frontend', SOURCE), 'raw', 4, 0x41);
  await writeVmXml(stack.fixturesDir, {
    id: VM,
    disks: [
      { diskId: 0, imageId: 2, source: SOURCE, format: 'raw', tmMad: 'grpc', size: 4, originalSize: 4 },
    ],
    history: [{ hostname: 'host01', dsId: 0, tmMad: 'grpc' }],
  });
});

afterAll(async () => {
  await stack?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Every text cell of every table in the SQLite file, as "table.column: value". */
function allText(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
      .all() as Array<{ name: string }>;
    return tables.flatMap(({ name }) =>
      (db.prepare(`SELECT * FROM "${name}"`).all() as Array<Record<string, unknown>>).flatMap((row) =>
        Object.entries(row)
          .filter(([, v]) => typeof v === 'string')
          .map(([column, v]) => `${name}.${column}: ${String(v)}`),
      ),
    );
  } finally {
    db.close();
  }
}

const modeOf = (file: string): number => statSync(file).mode & 0o777;

describe('the journal', () => {
  it('holds no data-path ticket after a cross-host copy', async () => {
    expectOk(
      await runAction(stack.remotesDir, 'tm', 'grpc', 'clone', [
        `frontend:${SOURCE}`,
        `host01:${ONED_DATASTORE_LOCATION}/0/${VM}/disk.0`,
        `${VM}`,
        '1',
      ]),
    );
    const text = allText(stack.journalPath);
    // The copy went through the data path: a receive step is there, with its ticket field redacted.
    const receive = text.filter((t) => t.startsWith('steps.args') && t.includes('"dataAddress"'));
    expect(receive).toHaveLength(1);
    expect(receive[0]).toContain('"ticket":"[redacted]"');
    expect(text.filter((t) => TICKET_PATTERN.test(t))).toEqual([]);
  });

  it('is created 0600: journal.db, -wal and -shm', () => {
    for (const suffix of ['', '-wal', '-shm']) {
      const file = `${stack.journalPath}${suffix}`;
      expect(existsSync(file), file).toBe(true);
      expect(modeOf(file).toString(8), file).toBe(OWNER_ONLY.toString(8));
    }
  });

  it('made 0600 when an older coordinator left it 0644', () => {
    const file = join(scratch, 'old.db');
    new Journal(file).close();
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o644);
    const journal = new Journal(file);
    try {
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(file + suffix)) expect(modeOf(file + suffix).toString(8), suffix).toBe('600');
      }
    } finally {
      journal.close();
    }
  });
});
