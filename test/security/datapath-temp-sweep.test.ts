// Security review, class 4 (docs/security.md#the-attack-tests): an agent killed during a receive leaves `.<name>.tmp-*`; the next start of the
// agent removes it, and so does the next receive into the same name, but never the temporary of a
// receive still running. The killed receiver is a real process (the built TransferService, run by
// `node`) killed with SIGKILL while a relay holds back the rest of the sender's stream, so the kill
// always lands mid-receive. Needs `npm run build` first (it runs dist/).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { entryAppears } from '../support/files.js';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ONED_ROOT, startService, qemuWrite, sha256File } from '../support/agent/transfer-support.js';
import { MiB, oned, tempLeftovers, useTransferPair } from '../support/agent/transfer-test-fixture.js';

const pair = useTransferPair();

/** The built agent's transfer service and path confinement: the killed receiver runs shipped code. */
const DIST_TRANSFER = resolve('dist/agent/src/transfer/transfer-service.js');
const DIST_ROOTS = resolve('dist/agent/src/paths/roots.js');
/** What the relay lets through before it stalls: the handshake, the manifest and some data. */
const RELAYED_BYTES = 2 * MiB;
const DAY_MS = 24 * 3600 * 1000;

const children: ChildProcess[] = [];
const relays: (() => void)[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const close of relays.splice(0)) close();
});

/** A TCP relay that forwards the sender's first `limit` bytes and then holds the rest back. */
async function stallingRelay(target: string, limit: number): Promise<string> {
  const port = Number(target.slice(target.lastIndexOf(':') + 1));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    let passed = 0;
    upstream.on('data', (chunk: Buffer) => {
      const room = limit - passed;
      if (room <= 0) return;
      client.write(chunk.subarray(0, room));
      passed += Math.min(room, chunk.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  relays.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function bigSource(name: string): Promise<void> {
  const src = join(pair.rootA, '0', name);
  await writeFile(src, '');
  await truncate(src, 64 * MiB);
  await qemuWrite(src, 'raw', [[0, 32 * MiB, 0x5c]]);
}

/** A receiving agent process (host-b on `root`) that pulls `src` into 0/`dst` through a stalling relay. */
async function killedMidReceive(root: string, src: string, dst: string): Promise<string> {
  const before = await tempLeftovers(join(root, '0'));
  const sent = await pair.a.openSend({ path: oned(`0/${src}`), ttlSeconds: 0, receiverName: 'host-b' });
  const relay = await stallingRelay(sent.dataAddress, RELAYED_BYTES);
  const pki = join(pair.work, 'pki-files');
  await mkdir(pki, { recursive: true });
  await Promise.all([
    writeFile(join(pki, 'ca.pem'), pair.tlsB.ca),
    writeFile(join(pki, 'cert.pem'), pair.tlsB.cert),
    writeFile(join(pki, 'key.pem'), pair.tlsB.key),
  ]);
  const script = `
    import { readFileSync } from 'node:fs';
    import { pino } from 'pino';
    import { TransferService } from ${JSON.stringify(DIST_TRANSFER)};
    import { Roots } from ${JSON.stringify(DIST_ROOTS)};
    const [pki, root, ticket, address, destination] = process.argv.slice(1);
    const tls = { ca: readFileSync(pki + '/ca.pem'), cert: readFileSync(pki + '/cert.pem'), key: readFileSync(pki + '/key.pem') };
    const roots = new Roots('host-b', [{ location: ${JSON.stringify(ONED_ROOT)}, path: root }]);
    const service = new TransferService({ name: 'host-b', tls, listen: '127.0.0.1:0', logger: pino({ level: 'silent' }),
      resolve: (path, field) => roots.resolve(path, field), realRoots: () => roots.realRoots() });
    await service.start();
    await service.receive({ ticket, dataAddress: address, sourceName: 'host-a', destination, sparse: true },
      new AbortController().signal);
  `;
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', script, pki, root, sent.ticket, relay, oned(`0/${dst}`)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`receiver exited early (${code}): ${stderr}`))),
  );
  const temp = await Promise.race([temporaryAppears(join(root, '0'), before), exited]);
  const killed = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await killed;
  return temp;
}

describe('datapath: temporaries of a killed receive (security review, class 4)', () => {
  it('the next agent start removes what a killed receive left', async () => {
    const root = join(pair.work, 'killed-1');
    await mkdir(join(root, '0', '42'), { recursive: true });
    await bigSource('k1.raw');
    const left = await killedMidReceive(root, 'k1.raw', 'k1.raw');
    expect(left).toMatch(/^\.k1\.raw\.tmp-/);
    expect(await tempLeftovers(join(root, '0'))).toEqual([left]);
    // Leftovers of older versions and of interrupted work in a VM directory, long stale, go too.
    const legacy = join(root, '0', '42', '.disk.0.tmp-0123456789ab');
    await writeFile(legacy, 'half');
    const old = new Date(Date.now() - 2 * DAY_MS);
    await utimes(legacy, old, old);

    const restarted = await startService('host-b', pair.tlsB, root);
    pair.extra.push(restarted);
    expect(await tempLeftovers(join(root, '0'))).toEqual([]);
    expect(await tempLeftovers(join(root, '0', '42'))).toEqual([]);
  });

  it('a receive into the same name removes stale temporaries first, but not a running receive', async () => {
    const root = join(pair.work, 'killed-2');
    await mkdir(join(root, '0'), { recursive: true });
    await bigSource('k2.raw');
    const left = await killedMidReceive(root, 'k2.raw', 'k2.raw');
    // A fresh temporary of unknown origin (another host sharing this datastore, say) stays.
    const foreign = '.k2.raw.tmp-host-z-0123456789ab';
    await writeFile(join(root, '0', foreign), 'in progress elsewhere');

    // Start-up sweeping is not what this test checks: the leftover is planted after the start.
    const service = await startService('host-b', pair.tlsB, root);
    pair.extra.push(service);
    const left2 = await killedMidReceive(root, 'k2.raw', 'k2.raw');
    expect((await tempLeftovers(join(root, '0'))).sort()).toEqual([foreign, left2].sort());
    expect(left2).not.toBe(left);

    // A receive of this process, stalled mid-way: its temporary must survive the next one.
    const slowSent = await pair.a.openSend({ path: oned('0/k2.raw'), ttlSeconds: 0, receiverName: 'host-b' });
    const slowRelay = await stallingRelay(slowSent.dataAddress, RELAYED_BYTES);
    const ac = new AbortController();
    const slow = service.receive(
      {
        ticket: slowSent.ticket,
        dataAddress: slowRelay,
        sourceName: 'host-a',
        destination: oned('0/k2.raw'),
        sparse: true,
      },
      ac.signal,
    );
    const running = await temporaryAppears(join(root, '0'), [foreign, left2]);

    const sent = await pair.a.openSend({ path: oned('0/k2.raw'), ttlSeconds: 0, receiverName: 'host-b' });
    await service.receive(
      {
        ticket: sent.ticket,
        dataAddress: sent.dataAddress,
        sourceName: 'host-a',
        destination: oned('0/k2.raw'),
        sparse: true,
      },
      new AbortController().signal,
    );
    expect(await sha256File(join(root, '0', 'k2.raw'))).toBe(
      await sha256File(join(pair.rootA, '0', 'k2.raw')),
    );
    expect((await tempLeftovers(join(root, '0'))).sort()).toEqual([foreign, running].sort());
    expect(await readFile(join(root, '0', foreign), 'utf8')).toBe('in progress elsewhere');

    ac.abort();
    await expect(slow).rejects.toThrow(/cancelled/);
    expect(await tempLeftovers(join(root, '0'))).toEqual([foreign]);
  });
});

/** Resolves when an entry whose name holds `.tmp-`, other than `known`, is (or comes) in `dir`. */
function temporaryAppears(dir: string, known: string[]): Promise<string> {
  return entryAppears(dir, (n) => n.includes('.tmp-') && !known.includes(n)).appeared;
}
