import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemCapacity } from '../agent/src/monitor/capacity.js';
import { duMiB, makeQcow2Disk } from './support/agent/monitor-fixtures.js';
import { runAction } from '../cli/src/demo/run-action.js';
import { Stack } from '../cli/src/demo/stack.js';
import { FakeMonitord } from './fakes/monitord/fake-monitord.js';
import { scalar, parseTemplate } from './fakes/monitord/template.js';

// A shared system datastore (110) that host01 and host02 both mount (one directory), monitored once
// by the coordinator's TM monitor; host02 pushes its own SYSTEM_HOST with the host id the
// coordinator gave it (its config has none).
const DS = 110;
const HOST02_ID = 5;
let base: string;
let shared: string;
let stack: Stack;
let monitord: FakeMonitord;
const expected: Record<number, { disks: Record<number, number>; snapshots: Record<string, number> }> = {};

function actionData(opts: { bridgeList: string; vmDisks: boolean; id?: number; basePath?: string }): string {
  const id = opts.id ?? DS;
  const xml =
    `<DS_DRIVER_ACTION_DATA><DATASTORE><ID>${id}</ID><NAME>ds${id}</NAME><TYPE>1</TYPE>` +
    `<TM_MAD>grpc_qcow2</TM_MAD><BASE_PATH>${opts.basePath ?? `/var/lib/one//datastores/${id}`}</BASE_PATH>` +
    `<TEMPLATE><BRIDGE_LIST><![CDATA[${opts.bridgeList}]]></BRIDGE_LIST></TEMPLATE></DATASTORE>` +
    `<DATASTORE_LOCATION>/var/lib/one/datastores</DATASTORE_LOCATION>` +
    (opts.vmDisks ? '<MONITOR_VM_DISKS>1</MONITOR_VM_DISKS>' : '') +
    '</DS_DRIVER_ACTION_DATA>';
  return Buffer.from(xml).toString('base64');
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'monitor-shared-'));
  shared = join(base, 'shared');
  const d = await makeQcow2Disk(join(shared, String(DS), '31'), 0, [0, 1, 12], [2, 1, 3]);
  await makeQcow2Disk(join(shared, String(DS), '32'), 2, [0], [1]);
  mkdirSync(join(shared, '1'), { recursive: true });
  expected[31] = {
    disks: { 0: await duMiB(d.active) },
    snapshots: { '0/0': await duMiB(d.layers[0] as string), '0/1': await duMiB(d.layers[1] as string) },
  };
  expected[32] = { disks: { 2: await duMiB(join(shared, String(DS), '32', 'disk.2')) }, snapshots: {} };
  monitord = await FakeMonitord.start({ knownHosts: [HOST02_ID] });
  stack = await Stack.start({
    hosts: ['frontend', 'host01', 'host02'],
    hostDirs: { host01: shared, host02: shared },
    coordinatorSettings: { monitord: { address: '127.0.0.1', port: monitord.port } },
    hostIds: { host02: HOST02_ID },
    agentSettings: (name) =>
      name === 'host02'
        ? {
            monitord: { address: '127.0.0.1', port: monitord.port },
            monitor: {
              report: 'push',
              socket: join(base, 'host02.sock'),
              schedules: { vm: '* * * * * *', system: '* * * * * *' },
            },
          }
        : {},
  });
});

afterAll(async () => {
  await stack?.stop();
  await monitord?.close();
  await rm(base, { recursive: true, force: true });
});

function sharedDisksMessages(): number {
  return monitord.accepted.filter((m) => m.type === 'MONITOR_VM' && m.hostId === -1).length;
}

describe('shared datastore monitoring', () => {
  it('tm monitor prints USED_MB FREE_MB TOTAL_MB and sends the VM disks to monitord as host -1', async () => {
    const r = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      [String(DS)],
      actionData({ bridgeList: 'host01 host02', vmDisks: true }),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /^USED_MB=(\d+) FREE_MB=(\d+) TOTAL_MB=(\d+)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const c = await filesystemCapacity(shared);
    expect(Number(m?.[3])).toBe(c.totalMb);
    await monitord.waitFor('MONITOR_VM from host -1', () => sharedDisksMessages() > 0);
    const msg = monitord.accepted.find((x) => x.type === 'MONITOR_VM' && x.hostId === -1);
    expect(msg?.timestamp).toBe(0);
    expect(monitord.diskSizes(31)).toEqual(expected[31]);
    expect(monitord.diskSizes(32)).toEqual(expected[32]);
  });

  it('without MONITOR_VM_DISKS only the capacity is reported', async () => {
    const before = sharedDisksMessages();
    const r = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      [String(DS)],
      actionData({ bridgeList: 'host01', vmDisks: false }),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^USED_MB=\d+ FREE_MB=\d+ TOTAL_MB=\d+\n$/);
    // The coordinator sends before it answers, so anything this call sent is queued at monitord
    // ahead of what a next call sends: once a call with the disks has arrived, the one without
    // has had every chance to arrive too, and only that one message is new.
    const withDisks = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      [String(DS)],
      actionData({ bridgeList: 'host01', vmDisks: true }),
    );
    expect(withDisks.code).toBe(0);
    await monitord.waitFor('MONITOR_VM of the call with the disks', () => sharedDisksMessages() > before);
    expect(sharedDisksMessages()).toBe(before + 1);
  });

  it('passes over a BRIDGE_LIST host whose agent is down, and runs on the front-end without a list', async () => {
    await stack.stopAgent('host01');
    try {
      const r = await runAction(
        stack.remotesDir,
        'tm',
        'grpc_qcow2',
        'monitor',
        [String(DS)],
        actionData({ bridgeList: 'host01 host02', vmDisks: false }),
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^USED_MB=\d+ FREE_MB=\d+ TOTAL_MB=\d+\n$/);
    } finally {
      await stack.startAgent('host01');
    }
    const fe = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      ['111'],
      actionData({ bridgeList: '', vmDisks: false, id: 111 }),
    );
    expect(fe.code, fe.stderr).toBe(0);
    // As tm/qcow2/monitor, the datastore directory is created where the monitor ran: the front-end.
    expect(existsSync(stack.localPath('frontend', '/var/lib/one/datastores/111'))).toBe(true);
  });

  it('image datastore monitor prints three lines for BASE_PATH', async () => {
    const r = await runAction(
      stack.remotesDir,
      'datastore',
      'grpc',
      'monitor',
      ['1'],
      actionData({ bridgeList: 'host02', vmDisks: false, id: 1, basePath: '/var/lib/one/datastores/1' }),
    );
    expect(r.code, r.stderr).toBe(0);
    const t = parseTemplate(r.stdout);
    expect(
      r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('=')[0]),
    ).toEqual(['USED_MB', 'FREE_MB', 'TOTAL_MB']);
    expect(Number(scalar(t, 'TOTAL_MB'))).toBe((await filesystemCapacity(shared)).totalMb);
  });

  it('bad input gets one line: malformed stdin, a missing ds id', async () => {
    const bad = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      [String(DS)],
      'not base64 at all!',
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/stdin: expected DS_DRIVER_ACTION_DATA in base64/);
    const noId = await runAction(
      stack.remotesDir,
      'tm',
      'grpc_qcow2',
      'monitor',
      [],
      actionData({ bridgeList: '', vmDisks: false }),
    );
    expect(noId.code).not.toBe(0);
  });

  it('an agent without a configured host id pushes with the one the coordinator gave it', async () => {
    await monitord.waitFor('SYSTEM_HOST from host 5', () => monitord.systemHost.has(HOST02_ID));
    expect(monitord.dropped.filter((d) => d.reason === 'unknown-host')).toEqual([]);
  });
});
