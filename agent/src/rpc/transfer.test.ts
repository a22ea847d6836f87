import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../common/src/errors.js';
import { FileKind, type ReceiveRequest } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { DEFAULT_LIBVIRT_URI } from '../libvirt/virsh.js';
import { JobRegistry } from '../jobs/job-registry.js';
import { PathLocks } from '../locks/path-locks.js';
import { Monitoring } from '../monitor/monitoring.js';
import { Roots } from '../paths/roots.js';
import type { AgentContext, CallContext, DataPath } from './context.js';
import { openSend, receive } from './transfer.js';

const LOC = '/var/lib/one/datastores';
const root = mkdtempSync(join(tmpdir(), 'rpc-transfer-'));
const SHORT_WAIT_MS = 20;

function context(dataPath: Partial<DataPath>): { agent: AgentContext; call: CallContext } {
  const rootConfigs = [{ location: LOC, path: root }];
  const roots = new Roots('host01', rootConfigs);
  const log = pino({ level: 'silent' });
  const agent: AgentContext = {
    name: 'host01',
    version: 'test',
    roots,
    locks: new PathLocks(SHORT_WAIT_MS),
    dataPath: { dataAddress: () => '127.0.0.1:1', ...dataPath } as DataPath,
    copyLocal: () => Promise.reject(new Error('unused')),
    libvirtUri: DEFAULT_LIBVIRT_URI,
    monitoring: new Monitoring({ source: 'test', roots: rootConfigs }, roots, log),
    imports: { dirs: ['/var/tmp'], ca: [] },
    jobs: new JobRegistry(),
  };
  return { agent, call: { signal: new AbortController().signal, log } };
}

const request: ReceiveRequest = {
  ticket: 't',
  dataAddress: '127.0.0.1:2',
  sourceName: 'host02',
  destination: `${LOC}/0/42/disk.0`,
  sparse: true,
};

describe('OpenSend / Receive handlers', () => {
  it('OpenSend refuses unsafe paths before the data path sees them', async () => {
    let called = false;
    const { agent, call } = context({ openSend: () => ((called = true), Promise.reject(new Error('no'))) });
    await expect(
      openSend(agent, { path: `${LOC}/0;ls`, ttlSeconds: 0, receiverName: 'host02' }, call),
    ).rejects.toMatchObject({
      reason: 'UNSAFE_PATH',
    });
    expect(called).toBe(false);
  });

  it('OpenSend requires receiver_name: a ticket is always bound to the agent that will pull', async () => {
    let called = false;
    const { agent, call } = context({ openSend: () => ((called = true), Promise.reject(new Error('no'))) });
    await expect(
      openSend(agent, { path: `${LOC}/0/a`, ttlSeconds: 0, receiverName: '' }, call),
    ).rejects.toThrow('open send on host01: receiver_name is required');
    expect(called).toBe(false);
  });

  it('OpenSend passes the request to the data path', async () => {
    const response = {
      ticket: 'x',
      dataAddress: '127.0.0.1:1',
      kind: FileKind.FILE_KIND_FILE,
      dataBytes: 1,
      entries: 1,
    };
    const { agent, call } = context({ openSend: () => Promise.resolve(response) });
    expect(
      await openSend(agent, { path: `${LOC}/0/a`, ttlSeconds: 0, receiverName: 'host02' }, call),
    ).toEqual(response);
  });

  it.each(['ticket', 'dataAddress', 'sourceName', 'destination'] as const)(
    'Receive requires %s',
    async (field) => {
      const { agent, call } = context({});
      await expect(receive(agent, { ...request, [field]: '' }, call)).rejects.toMatchObject({
        reason: 'INVALID_ARGUMENT',
      });
    },
  );

  it('Receive holds the destination lock: a second receive into the same place is LOCKED', async () => {
    let finish: () => void = () => undefined;
    const slow = new Promise<void>((r) => (finish = r));
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((r) => (entered = r));
    const { agent, call } = context({
      receive: async () => {
        entered();
        await slow;
        return { bytes: 1, files: 1, durationMs: 1, digest: 'd' };
      },
    });
    const first = receive(agent, request, call);
    // Only once the first call holds the lock (it is inside the data path) does the second start:
    // otherwise either may win the race, and a loaded machine made the second win (a CI hang).
    await inside;
    const second = await receive(agent, request, call).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(StorageError);
    expect((second as StorageError).reason).toBe('LOCKED');
    finish();
    expect((await first).files).toBe(1);
  });
});
