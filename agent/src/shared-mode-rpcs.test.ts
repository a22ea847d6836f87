import { mkdirSync, readlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentServiceClient,
  type CloneOverlayRequest,
  ImageFormat,
  type LinkImageRequest,
} from '../../proto/gen/onestorage/agent/v1/agent.js';
import { pkiFiles } from '../../common/src/pki/pki.js';
import { parseAgentConfig } from './config.js';
import { type RunningAgent, startAgent } from './server.js';
import {
  AGENT_NAME,
  LOCATION,
  agentClient,
  call,
  failure,
  makeDatastores,
  makePki,
  makeTempDir,
  ds,
} from '../../test/support/agent/agent-fixture.js';
import { KIB, patternMismatches, qemuImg, writePattern } from '../../test/support/agent/disk-testing.js';

/** CloneOverlay and LinkImage (the shared-mode TM driver) through a real agent over mutual TLS. */
let base: string;
let root: string;
let agent: RunningAgent;
let client: AgentServiceClient;
const local = (rel: string): string => join(root, rel);
const DATA = 64 * KIB;
const BYTE = 0x5a;

beforeAll(async () => {
  base = await makeTempDir('agent-shared-rpcs-');
  const pki = await makePki(base);
  root = await makeDatastores(base);
  const config = parseAgentConfig(
    {
      name: AGENT_NAME,
      listen: '127.0.0.1:0',
      roots: [{ location: LOCATION, path: root }],
      tls: pkiFiles(pki.dir, AGENT_NAME),
    },
    'test config',
  );
  agent = await startAgent(config, pino({ level: 'silent' }));
  client = agentClient(agent.port, pki.dir);
  mkdirSync(local('1'), { recursive: true });
  await qemuImg('create', '-q', '-f', 'qcow2', local('1/img'), '8M');
  await writePattern(local('1/img'), 'qcow2', BYTE, 0, DATA);
});

afterAll(async () => {
  client?.close();
  await agent?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

const clone = (r: CloneOverlayRequest) => call(client.cloneOverlay.bind(client), r);
const link = (r: LinkImageRequest) => call(client.linkImage.bind(client), r);

describe('shared-mode disk RPCs over mutual TLS', () => {
  it('CloneOverlay builds the overlay; repeats answer the same', async () => {
    const r = {
      source: ds('1/img'),
      diskPath: ds('0/30/disk.0'),
      standalone: false,
      sparse: true,
      format: ImageFormat.IMAGE_FORMAT_QCOW2,
    };
    for (let i = 0; i < 3; i++) expect(await clone(r)).toEqual({ format: ImageFormat.IMAGE_FORMAT_QCOW2 });
    expect(readlinkSync(local('0/30/disk.0'))).toBe('disk.0.snap/0');
    expect(
      await patternMismatches(local('0/30/disk.0'), 'qcow2', [{ offset: 0, length: DATA, byte: BYTE }]),
    ).toEqual([]);
  });

  it('LinkImage links the disk to <IMG>.snap/0; repeats answer the same', async () => {
    const r = { source: ds('1/img'), diskPath: ds('0/31/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 };
    for (let i = 0; i < 3; i++) expect(await link(r)).toEqual({ snapshotId: 0 });
    expect(readlinkSync(local('0/31/disk.0'))).toBe('../../1/img.snap/0');
  });

  it.each([
    [
      'CloneOverlay',
      (source: string) =>
        clone({
          source,
          diskPath: ds('0/32/disk.0'),
          standalone: false,
          sparse: true,
          format: ImageFormat.IMAGE_FORMAT_QCOW2,
        }),
    ],
    [
      'LinkImage',
      (source: string) =>
        link({ source, diskPath: ds('0/32/disk.0'), format: ImageFormat.IMAGE_FORMAT_QCOW2 }),
    ],
  ])('%s: NOT_FOUND, PERMISSION_DENIED and INVALID_ARGUMENT on the wire', async (_name, rpc) => {
    const missing = await failure(rpc(ds('1/missing')));
    expect(missing).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'NOT_FOUND' });
    expect(missing.message).toContain(`${AGENT_NAME}:${ds('1/missing')}`);
    expect(await failure(rpc('/etc/hostname'))).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      reason: 'PATH_OUTSIDE_ROOTS',
    });
    expect(await failure(rpc(''))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });
});
