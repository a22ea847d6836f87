import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualMachineServiceService, type VirtualMachineServiceServer } from '../../../proto/gen/one/vm.js';
import { OnedError } from './oned-error.js';
import { normaliseEndpoint, OnedClient } from './oned-client.js';

const SESSION = 'oneadmin:hunter2-secret';
const DEADLINE_MS = 300;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function client(endpoint: string): OnedClient {
  const c = new OnedClient({ endpoint, session: SESSION, deadlineMs: DEADLINE_MS });
  cleanups.push(() => c.close());
  return c;
}

async function listen(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('normaliseEndpoint', () => {
  it.each([
    ['fe.example', 'fe.example:2634'],
    ['10.0.0.1', '10.0.0.1:2634'],
    ['10.0.0.1:2700', '10.0.0.1:2700'],
    [' localhost:2634 ', 'localhost:2634'],
    ['[::1]', '[::1]:2634'],
    ['[::1]:2700', '[::1]:2700'],
    ['fd00::1', '[fd00::1]:2634'],
  ])('%j -> %s', (input, output) => {
    expect(normaliseEndpoint(input)).toBe(output);
  });

  it.each(['', 'http://fe:2634', 'fe 2634'])('refuses %j', (input) => {
    expect(() => normaliseEndpoint(input)).toThrow('oned endpoint must be host or host:port');
  });
});

describe('OnedClient', () => {
  it('refuses bad options without echoing the session', () => {
    expect(() => new OnedClient({ endpoint: 'fe', session: SESSION, deadlineMs: 0 })).toThrow(
      'deadlineMs must be a positive integer',
    );
    expect(() => new OnedClient({ endpoint: 'fe', session: '', deadlineMs: 1 })).toThrow(
      'the session is empty',
    );
  });

  it('refuses an invalid id before calling oned', async () => {
    const c = client('127.0.0.1:1');
    await expect(c.vmXml(-1)).rejects.toThrow('oned: invalid VM id -1');
    await expect(c.imageXml(1.5)).rejects.toThrow('oned: invalid image id 1.5');
    await expect(c.allocateImage('NAME=x', 2 ** 31)).rejects.toThrow('oned: invalid datastore id 2147483648');
  });

  it('reports an endpoint where nothing listens as unreachable', async () => {
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    const err = (await client(`127.0.0.1:${port}`)
      .vmXml(42)
      .catch((e: unknown) => e)) as OnedError;
    expect(err).toBeInstanceOf(OnedError);
    expect(err.message).toBe(`oned unreachable at 127.0.0.1:${port} (UNAVAILABLE)`);
    expect(err.code).toBe(status.UNAVAILABLE);
  });

  it('gives up at the deadline when oned accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    const port = await listen(silent);
    cleanups.push(() => {
      sockets.forEach((s) => s.destroy());
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const started = Date.now();
    await expect(client(`127.0.0.1:${port}`).datastoreXml(100)).rejects.toThrow(
      `oned: datastore 100 info timed out after ${DEADLINE_MS} ms at 127.0.0.1:${port} (DEADLINE_EXCEEDED)`,
    );
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS * 10);
  });

  it('never repeats the session, even when oned echoes it in an error', async () => {
    const server = new Server();
    const echoing: VirtualMachineServiceServer = {
      info: (call, done) =>
        done({
          code: status.PERMISSION_DENIED,
          details: `[one.vm.info] bad session\n${call.request.sessionId}`,
        }),
    };
    server.addService(VirtualMachineServiceService, echoing);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanups.push(() => void server.forceShutdown());
    const err = (await client(`127.0.0.1:${port}`)
      .vmXml(42)
      .catch((e: unknown) => e)) as OnedError;
    expect(err.message).toBe(
      'oned: VM 42 info failed: PERMISSION_DENIED: [one.vm.info] bad session [redacted]',
    );
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain('hunter2-secret');
  });

  it('fails at once after close()', async () => {
    const c = client('127.0.0.1:1');
    c.close();
    await expect(c.hostXml(1)).rejects.toThrow('oned: host 1 info failed: the oned client is closed');
  });
});
