// The agent's RPCs through a real gRPC client over mutual TLS: repeats, refusals, the data path
// between two agents and the RPC log.
import { randomBytes } from 'node:crypto';
import {
  lstatSync,
  readdirSync,
  readFileSync,
  existsSync,
  mkdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelOptions, clientCredentials, loadTls } from '../../common/src/tls.js';
import { AgentServiceClient, FileKind, ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';
import { issueCertificate, pkiFiles } from '../../common/src/pki/pki.js';
import { parseAgentConfig } from './config.js';
import { MIB } from '../../common/src/units.js';
import { imageInfo } from './qemu/qemu-img.js';
import { type RunningAgent, startAgent } from './server.js';
import {
  AGENT_NAME,
  LOCATION,
  call,
  failure,
  makeDatastores,
  ds,
} from '../../test/support/agent/agent-fixture.js';
import { REPEATS, qemuImg, repeat, useAgentServer } from '../../test/support/agent/server-test-fixture.js';
import { wireFormat } from '../../test/support/wire-enums.js';

const ctx = useAgentServer();

describe('MakeDir, Stat, Delete', () => {
  it('MakeDir creates once and then reports the existing directory', async () => {
    const results = await repeat(() => call(ctx.client.makeDir.bind(ctx.client), { path: ds('0/42/') }));
    expect(results).toEqual([
      { created: true, made: [ds('0/42')] },
      { created: false, made: [] },
      { created: false, made: [] },
    ]);
    expect(statSync(ctx.local('0/42')).mode & 0o777).toBe(0o755);
  });

  it('MakeDir on a file is ALREADY_EXISTS', async () => {
    writeFileSync(ctx.local('0/afile'), '');
    const err = await failure(call(ctx.client.makeDir.bind(ctx.client), { path: ds('0/afile') }));
    expect(err).toMatchObject({ code: grpc.status.ALREADY_EXISTS, reason: 'ALREADY_EXISTS' });
    expect(err.message).toBe(`mkdir ${AGENT_NAME}:${ds('0/afile')}: exists and is not a directory`);
  });

  it('Stat describes files, directories and symlinks without following them, the same every time', async () => {
    writeFileSync(ctx.local('0/42/disk.0'), 'hello');
    symlinkSync(ctx.local('1/image'), ctx.local('0/42/disk.1'));
    const [file, ...again] = await repeat(() =>
      call(ctx.client.stat.bind(ctx.client), { path: ds('0//42/disk.0'), follow: false }),
    );
    expect(again).toEqual([file, file]);
    expect(file).toMatchObject({ exists: true, kind: FileKind.FILE_KIND_FILE, size: 5, linkTarget: '' });
    expect(file?.mtimeMs).toBeGreaterThan(0);
    const link = await call(ctx.client.stat.bind(ctx.client), { path: ds('0/42/disk.1'), follow: false });
    expect(link).toMatchObject({
      exists: true,
      kind: FileKind.FILE_KIND_SYMLINK,
      linkTarget: ctx.local('1/image'),
    });
    const dir = await call(ctx.client.stat.bind(ctx.client), { path: ds('0/42'), follow: false });
    expect(dir.kind).toBe(FileKind.FILE_KIND_DIRECTORY);
    const absent = await call(ctx.client.stat.bind(ctx.client), { path: ds('0/42/disk.9'), follow: false });
    expect(absent).toMatchObject({ exists: false, kind: FileKind.FILE_KIND_UNSPECIFIED });
  });

  it('Delete removes a symlink, not its target', async () => {
    writeFileSync(ctx.local('1/target'), 'keep');
    symlinkSync(ctx.local('1/target'), ctx.local('0/link'));
    expect(await call(ctx.client.delete.bind(ctx.client), { path: ds('0/link') })).toEqual({ existed: true });
    expect(readFileSync(ctx.local('1/target'), 'utf8')).toBe('keep');
  });

  it('Delete removes a tree; repeats and absent paths succeed with existed=false', async () => {
    mkdirSync(ctx.local('0/77/disk.0.snap'), { recursive: true });
    writeFileSync(ctx.local('0/77/disk.0.snap/0'), 'x');
    const results = await repeat(() => call(ctx.client.delete.bind(ctx.client), { path: ds('0/77') }));
    expect(results).toEqual([{ existed: true }, { existed: false }, { existed: false }]);
    expect(existsSync(ctx.local('0/77'))).toBe(false);
    expect(await call(ctx.client.delete.bind(ctx.client), { path: ds('0/never/was') })).toEqual({
      existed: false,
    });
  });

  it('Delete refuses the datastore root itself', async () => {
    const err = await failure(call(ctx.client.delete.bind(ctx.client), { path: `${LOCATION}/` }));
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'UNSAFE_PATH' });
    expect(existsSync(ctx.root)).toBe(true);
  });
});

describe('SetMonitorMarker', () => {
  it('writes the driver into <ds>/.monitor, creating the directory, and removes it for an empty driver', async () => {
    await repeat(() =>
      call(ctx.client.setMonitorMarker.bind(ctx.client), { datastoreDir: ds('100/'), driver: 'grpc' }),
    );
    expect(readFileSync(ctx.local('100/.monitor'), 'utf8')).toBe('grpc\n');
    await call(ctx.client.setMonitorMarker.bind(ctx.client), { datastoreDir: ds('100'), driver: 'ssh' });
    expect(readFileSync(ctx.local('100/.monitor'), 'utf8')).toBe('ssh\n');
    await repeat(() =>
      call(ctx.client.setMonitorMarker.bind(ctx.client), { datastoreDir: ds('100'), driver: '' }),
    );
    expect(existsSync(ctx.local('100/.monitor'))).toBe(false);
  });

  it('refuses a driver name that is not one', async () => {
    const err = await failure(
      call(ctx.client.setMonitorMarker.bind(ctx.client), { datastoreDir: ds('0'), driver: '../x' }),
    );
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
  });
});

describe('Resize (real qemu-img)', () => {
  it.each(['qcow2', 'raw'] as const)('grows a %s image once; repeats are no-ops', async (format) => {
    await qemuImg('create', '-q', '-f', format, ctx.local(`0/42/grow.${format}`), '16M');
    const results = await repeat(() =>
      call(ctx.client.resize.bind(ctx.client), {
        path: ds(`0/42/grow.${format}`),
        sizeMb: 48,
        preallocate: false,
        format: wireFormat(format),
      }),
    );
    expect(results).toEqual([
      { changed: true, virtualSize: 48 * MIB },
      { changed: false, virtualSize: 48 * MIB },
      { changed: false, virtualSize: 48 * MIB },
    ]);
    const info = await imageInfo(ctx.local(`0/42/grow.${format}`), format);
    expect(info).toMatchObject({ format, virtualSize: 48 * MIB });
  });

  it('preallocates with SPARSE=no (raw: allocated grows to about the full size)', async () => {
    await qemuImg('create', '-q', '-f', 'raw', ctx.local('0/42/full.raw'), '1M');
    await call(ctx.client.resize.bind(ctx.client), {
      path: ds('0/42/full.raw'),
      sizeMb: 64,
      preallocate: true,
      format: ImageFormat.IMAGE_FORMAT_RAW,
    });
    expect(lstatSync(ctx.local('0/42/full.raw')).blocks * 512).toBeGreaterThanOrEqual(63 * MIB);
    await qemuImg('create', '-q', '-f', 'raw', ctx.local('0/42/sparse.raw'), '1M');
    await call(ctx.client.resize.bind(ctx.client), {
      path: ds('0/42/sparse.raw'),
      sizeMb: 64,
      preallocate: false,
      format: ImageFormat.IMAGE_FORMAT_RAW,
    });
    expect(lstatSync(ctx.local('0/42/sparse.raw')).blocks * 512).toBeLessThan(MIB);
  });

  it('refuses to shrink, and reports a missing image as NOT_FOUND', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', ctx.local('0/42/big.qcow2'), '32M');
    const shrink = await failure(
      call(ctx.client.resize.bind(ctx.client), {
        path: ds('0/42/big.qcow2'),
        sizeMb: 16,
        preallocate: false,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      }),
    );
    expect(shrink).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    expect(shrink.message).toMatch(/^resize host01:\/var\/lib\/one\/datastores\/0\/42\/big.qcow2: shrinking/);
    expect((await imageInfo(ctx.local('0/42/big.qcow2'), 'qcow2')).virtualSize).toBe(32 * MIB);
    const missing = await failure(
      call(ctx.client.resize.bind(ctx.client), {
        path: ds('0/42/nope'),
        sizeMb: 16,
        preallocate: false,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      }),
    );
    expect(missing).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'NOT_FOUND' });
    const zero = await failure(
      call(ctx.client.resize.bind(ctx.client), {
        path: ds('0/42/big.qcow2'),
        sizeMb: 0,
        preallocate: false,
        format: ImageFormat.IMAGE_FORMAT_QCOW2,
      }),
    );
    expect(zero.message).toBe('resize on host01: size_mb must be a positive integer');
  });
});

describe('Copy and CreateProbe', () => {
  it('Copy keeps holes and gives the same result when repeated', async () => {
    await qemuImg('create', '-q', '-f', 'raw', ctx.local('1/image.raw'), '64M');
    writeFileSync(ctx.local('1/small'), 'data');
    const results = await repeat(() =>
      call(ctx.client.copy.bind(ctx.client), {
        source: ds('1/image.raw'),
        destination: ds('0/42/disk.2'),
        sparse: true,
      }),
    );
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(statSync(ctx.local('0/42/disk.2')).size).toBe(64 * MIB);
    expect(statSync(ctx.local('0/42/disk.2')).blocks * 512).toBeLessThan(MIB);
  });

  it('Copy of a missing source is NOT_FOUND', async () => {
    const err = await failure(
      call(ctx.client.copy.bind(ctx.client), {
        source: ds('1/nothing'),
        destination: ds('0/x'),
        sparse: true,
      }),
    );
    expect(err).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'NOT_FOUND' });
    expect(err.message).toBe(
      `copy ${AGENT_NAME}:${ds('1/nothing')} to ${ds('0/x')}: the source does not exist`,
    );
  });

  it('CreateProbe makes a new empty file each time and returns its oned-view path', async () => {
    const results = await repeat(() =>
      call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0//42/'), name: newProbeName() }),
    );
    expect(new Set(results.map((r) => r.path)).size).toBe(REPEATS);
    for (const { path, created } of results) {
      expect(path).toMatch(/^\/var\/lib\/one\/datastores\/0\/42\/\.probe-[0-9a-f]{32}$/);
      expect(created).toBe(true);
      expect(statSync(ctx.local(path.slice(LOCATION.length + 1))).size).toBe(0);
    }
    const err = await failure(
      call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/none'), name: newProbeName() }),
    );
    expect(err).toMatchObject({ code: grpc.status.NOT_FOUND, reason: 'NOT_FOUND' });
  });

  it('CreateProbe repeated with the same name finds the same probe and makes no second one', async () => {
    const name = newProbeName();
    const results = await repeat(() =>
      call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/42'), name }),
    );
    expect(results).toEqual([
      { path: ds(`0/42/${name}`), created: true },
      { path: ds(`0/42/${name}`), created: false },
      { path: ds(`0/42/${name}`), created: false },
    ]);
    expect(readdirSync(ctx.local('0/42')).filter((f) => f.startsWith('.probe-'))).toContain(name);
    expect(statSync(ctx.local(`0/42/${name}`)).size).toBe(0);
  });

  it('CreateProbe refuses a name that is not a probe name, and a name held by something else', async () => {
    for (const name of ['', 'disk.0', '.probe-../../x', `.probe-${'A'.repeat(32)}`]) {
      const err = await failure(call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/42'), name }));
      expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
      expect(err.message).toMatch(
        /^create probe on host01: name (is required|must be \.probe- and 32 lowercase hex digits)/,
      );
    }
    const taken = newProbeName();
    writeFileSync(ctx.local(`0/42/${taken}`), 'not a probe');
    const err = await failure(
      call(ctx.client.createProbe.bind(ctx.client), { dir: ds('0/42'), name: taken }),
    );
    expect(err).toMatchObject({ code: grpc.status.ALREADY_EXISTS, reason: 'ALREADY_EXISTS' });
    expect(readFileSync(ctx.local(`0/42/${taken}`), 'utf8')).toBe('not a probe');
  });
});

/** What the coordinator passes: a new random probe name. */
function newProbeName(): string {
  return `.probe-${randomBytes(16).toString('hex')}`;
}

describe('OpenSend and Receive (the data path between two agents)', () => {
  let second: RunningAgent;
  let secondRoot: string;
  let secondClient: AgentServiceClient;

  beforeAll(async () => {
    await issueCertificate(ctx.pki.dir, 'host02', ['127.0.0.1']);
    secondRoot = await makeDatastores(join(ctx.base, 'host02'));
    const config = parseAgentConfig(
      {
        name: 'host02',
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: secondRoot }],
        tls: pkiFiles(ctx.pki.dir, 'host02'),
      },
      'test config host02',
    );
    second = await startAgent(config, pino({ level: 'silent' }));
    secondClient = new AgentServiceClient(
      `127.0.0.1:${second.port}`,
      clientCredentials(loadTls(pkiFiles(ctx.pki.dir, 'coordinator'), 'test')),
      channelOptions('host02'),
    );
  });

  afterAll(async () => {
    secondClient?.close();
    await second?.close();
  });

  it('moves a sparse image from host01 to host02, keeping holes; a repeat with a new ticket gives the same result', async () => {
    await qemuImg('create', '-q', '-f', 'raw', ctx.local('1/send.raw'), '32M');
    writeFileSync(ctx.local('1/send.raw'), 'payload', { flag: 'r+' });
    // Receive needs the destination's directory, as the coordinator's MakeDir-then-Receive provides.
    await call(secondClient.makeDir.bind(secondClient), { path: ds('0/42') });
    const results = [];
    for (let i = 0; i < REPEATS; i++) {
      const ticket = await call(ctx.client.openSend.bind(ctx.client), {
        path: ds('1/send.raw'),
        ttlSeconds: 0,
        receiverName: 'host02',
      });
      expect(ticket).toMatchObject({
        dataAddress: ctx.agent.dataAddress,
        kind: FileKind.FILE_KIND_FILE,
        entries: 1,
      });
      const received = await call(secondClient.receive.bind(secondClient), {
        ticket: ticket.ticket,
        dataAddress: ticket.dataAddress,
        sourceName: AGENT_NAME,
        destination: ds('0/42/disk.0'),
        sparse: true,
      });
      results.push({ files: received.files, digest: received.digest });
    }
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    const copy = join(secondRoot, '0/42/disk.0');
    expect(statSync(copy).size).toBe(32 * MIB);
    expect(statSync(copy).blocks * 512).toBeLessThan(MIB);
    expect(readFileSync(copy).subarray(0, 7).toString()).toBe('payload');
  });

  it('Receive refuses a destination outside the roots before dialling anyone', async () => {
    const err = await failure(
      call(secondClient.receive.bind(secondClient), {
        ticket: 'x',
        dataAddress: ctx.agent.dataAddress,
        sourceName: AGENT_NAME,
        destination: '/etc/evil',
        sparse: true,
      }),
    );
    expect(err).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: 'PATH_OUTSIDE_ROOTS' });
    expect(err.message).toContain('destination host02:/etc/evil');
  });
});

describe('logging', () => {
  it('logs every RPC once with method, code, duration and the request id', async () => {
    await call(ctx.client.stat.bind(ctx.client), { path: ds('0'), follow: false }, 'req-123');
    await failure(call(ctx.client.stat.bind(ctx.client), { path: '/etc', follow: false }, 'req-456'));
    const ok = ctx.logLines.filter((l) => l['msg'] === 'rpc' && l['requestId'] === 'req-123');
    const bad = ctx.logLines.filter((l) => l['msg'] === 'rpc' && l['requestId'] === 'req-456');
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({ method: 'Stat', code: 'OK', peer: 'coordinator' });
    expect(typeof ok[0]?.['ms']).toBe('number');
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ method: 'Stat', code: 'PERMISSION_DENIED' });
  });
});
