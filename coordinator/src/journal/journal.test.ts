import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from './journal.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

const SESSION = 'oneadmin:hunter2-secret';
const CLONE_ARGS = [
  'fe:/var/lib/one//datastores/1/9f3c',
  'host01:/var/lib/one//datastores/100/42/disk.0',
  '42',
  '1',
];

describe('Journal', () => {
  let dir: string;
  let file: string;
  let clock: number;
  const open = (): Journal => new Journal(file, { now: () => clock, redact: [SESSION] });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'journal-'));
    file = join(dir, 'journal.sqlite');
    clock = 1_700_000_000_000;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips a call with two steps, and keeps it across a close and reopen', () => {
    const journal = open();
    journal.beginCall({
      requestId: 'r1',
      kind: 'tm',
      driver: 'grpc',
      action: 'clone.ssh',
      args: CLONE_ARGS,
      vmId: 42,
    });
    clock += 5;
    const s1 = journal.beginStep('r1', {
      host: 'fe',
      rpc: 'Stat',
      args: { path: '/var/lib/one//datastores/1/9f3c' },
    });
    clock += 10;
    journal.endStep(s1, { outcome: 'success' });
    const s2 = journal.beginStep('r1', { host: 'host01', rpc: 'Clone', args: { sizeMb: 10240 } });
    journal.stepProgress(s2, { bytes: 1 << 20, total: 4 << 20, rate: 1000, phase: 'receiving' });
    clock += 100;
    journal.endStep(s2, { outcome: 'success', bytes: 2 << 20 });
    journal.endCall('r1', { outcome: 'success', exitCode: 0, bytes: 2 << 20, hosts: ['fe', 'host01'] });
    journal.close();

    const reopened = open();
    try {
      expect(reopened.call('r1')).toEqual({
        requestId: 'r1',
        kind: 'tm',
        driver: 'grpc',
        action: 'clone.ssh',
        args: CLONE_ARGS,
        hosts: ['fe', 'host01'],
        vmId: 42,
        startedAt: 1_700_000_000_000,
        endedAt: 1_700_000_000_115,
        outcome: 'success',
        exitCode: 0,
        error: undefined,
        bytes: 2 << 20,
        cancelledBy: undefined,
        interruptedAt: undefined,
      });
      expect(reopened.steps('r1')).toEqual([
        {
          id: s1,
          requestId: 'r1',
          host: 'fe',
          rpc: 'Stat',
          args: { path: '/var/lib/one//datastores/1/9f3c' },
          startedAt: 1_700_000_000_005,
          endedAt: 1_700_000_000_015,
          outcome: 'success',
          error: undefined,
          bytes: undefined,
          total: undefined,
          rate: undefined,
          phase: undefined,
          progressAt: undefined,
        },
        {
          id: s2,
          requestId: 'r1',
          host: 'host01',
          rpc: 'Clone',
          args: { sizeMb: 10240 },
          startedAt: 1_700_000_000_015,
          endedAt: 1_700_000_000_115,
          outcome: 'success',
          error: undefined,
          bytes: 2 << 20,
          total: 4 << 20,
          rate: 1000,
          phase: 'receiving',
          progressAt: 1_700_000_000_015,
        },
      ]);
      expect(reopened.unfinished()).toEqual([]);
    } finally {
      reopened.close();
    }
  });

  it('lists calls still running after a restart, for reconciliation', () => {
    const journal = open();
    journal.beginCall({ requestId: 'done', kind: 'tm', driver: 'grpc', action: 'delete', args: [] });
    journal.endCall('done', { outcome: 'failure', exitCode: 1, error: 'host01: /x: Permission denied' });
    clock += 1;
    journal.beginCall({
      requestId: 'cut',
      kind: 'tm',
      driver: 'grpc',
      action: 'mv',
      args: ['a', 'b'],
      vmId: 7,
    });
    journal.beginStep('cut', { host: 'host02', rpc: 'Move', args: {} });
    clock += 1;
    journal.beginCall({ requestId: 'cut2', kind: 'datastore', driver: 'grpc', action: 'cp', args: [] });
    journal.close(); // the coordinator dies here

    const reopened = open();
    try {
      expect(reopened.unfinished().map((c) => [c.requestId, c.outcome, c.vmId])).toEqual([
        ['cut', 'running', 7],
        ['cut2', 'running', undefined],
      ]);
      expect(reopened.steps('cut').map((s) => s.outcome)).toEqual(['running']);
      expect(reopened.call('done')?.error).toBe('host01: /x: Permission denied');
      // reconciliation closes them; then nothing is left
      reopened.endCall('cut', {
        outcome: 'failure',
        exitCode: 1,
        error: 'interrupted by a coordinator restart',
      });
      reopened.endCall('cut2', { outcome: 'success', exitCode: 0 });
      expect(reopened.unfinished()).toEqual([]);
      expect(reopened.recentCalls(2).map((c) => c.requestId)).toEqual(['cut2', 'cut']);
      expect(reopened.recentCalls(10)).toHaveLength(3);
    } finally {
      reopened.close();
    }
  });

  it('uses WAL and records its schema version', () => {
    open().close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('redacts secret fields in step arguments, and the tickets an older journal kept', () => {
    const ticket = 'ab'.repeat(32);
    const journal = open();
    journal.beginCall({ requestId: 'r', kind: 'tm', driver: 'grpc', action: 'clone', args: [] });
    const step = journal.beginStep('r', {
      host: 'host01',
      rpc: 'receive',
      args: { ticket, destination: '/d' },
    });
    journal.endStep(step, { outcome: 'success' });
    expect(journal.steps('r')[0]?.args).toEqual({ ticket: '[redacted]', destination: '/d' });
    journal.close();
    rmSync(file, { force: true });
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    // A journal from before redaction (schema version 1) with a ticket in plain text.
    const db = new Database(file);
    db.exec(MIGRATIONS[0] ?? '');
    db.prepare(
      `INSERT INTO calls (request_id, kind, driver, action, args, started_at, outcome)
       VALUES ('r', 'tm', 'grpc', 'clone', '[]', 1, 'success')`,
    ).run();
    db.prepare(
      `INSERT INTO steps (request_id, host, rpc, args, started_at, outcome) VALUES ('r', 'host01', 'receive', ?, 1, 'success')`,
    ).run(JSON.stringify({ ticket, destination: '/d' }));
    db.pragma('user_version = 1');
    db.close();
    const reopened = open();
    try {
      expect(reopened.steps('r')[0]?.args).toEqual({ ticket: '[redacted]', destination: '/d' });
    } finally {
      reopened.close();
    }
  });

  it('keeps no export token: not in step arguments, not in error text', () => {
    const token = 'x'.repeat(43);
    const url = `https://host01:7201/export/${token}/image-7.qcow2`;
    const journal = open();
    try {
      journal.beginCall({ requestId: 'e', kind: 'ds', driver: 'grpc', action: 'export', args: [url] });
      const step = journal.beginStep('e', { host: 'host01', rpc: 'exportImage', args: { note: url } });
      journal.endStep(step, { outcome: 'failure', error: `market import of ${url} failed` });
      journal.endCall('e', { outcome: 'failure', exitCode: 1, error: `fetch ${url}: 404` });
      const stored = JSON.stringify([journal.call('e'), journal.steps('e')]);
      expect(stored).not.toContain(token);
      expect(stored).toContain('https://host01:7201/export/[redacted]/image-7.qcow2');
    } finally {
      journal.close();
    }
  });

  it('refuses a journal written by a newer coordinator', () => {
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => open()).toThrow(`has schema version ${SCHEMA_VERSION + 1}, newer than this coordinator's`);
  });

  it('never writes a configured secret', () => {
    const journal = open();
    journal.beginCall({ requestId: 'r', kind: 'tm', driver: 'grpc', action: 'cpds', args: ['x', SESSION] });
    journal.endCall('r', { outcome: 'failure', exitCode: 1, error: `oned said ${SESSION}` });
    journal.close();
    const db = new Database(file, { readonly: true });
    try {
      expect(JSON.stringify(db.prepare('SELECT * FROM calls').all())).not.toContain('hunter2');
    } finally {
      db.close();
    }
  });

  it.each([
    [
      'a duplicate request id',
      (j: Journal) => j.beginCall({ requestId: 'r', kind: 'tm', driver: 'g', action: 'a', args: [] }),
      'journal: call r is already recorded',
    ],
    [
      'ending an unknown call',
      (j: Journal) => j.endCall('nope', { outcome: 'success', exitCode: 0 }),
      'journal: no call nope',
    ],
    [
      'ending a call twice',
      (j: Journal) => {
        j.endCall('r', { outcome: 'success', exitCode: 0 });
        j.endCall('r', { outcome: 'failure', exitCode: 1 });
      },
      'journal: call r already ended (success)',
    ],
    [
      'a step of an unknown call',
      (j: Journal) => j.beginStep('nope', { host: 'h', rpc: 'X', args: {} }),
      'journal: step for unknown call nope',
    ],
    [
      'ending an unknown step',
      (j: Journal) => j.endStep(999, { outcome: 'success' }),
      'journal: no step 999',
    ],
  ])('refuses %s', (_name, act, message) => {
    const journal = open();
    try {
      journal.beginCall({ requestId: 'r', kind: 'tm', driver: 'g', action: 'a', args: [] });
      expect(() => act(journal)).toThrow(message);
    } finally {
      journal.close();
    }
  });
});
