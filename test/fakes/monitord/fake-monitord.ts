import { constants, privateDecrypt, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { inflateSync } from 'node:zlib';
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import { parseTemplate, vectors, type Template } from './template.js';

/**
 * A stand-in for OpenNebula's monitord, receiving side only, as docs/opennebula/monitoring.md#wire-format describes it: UDP and
 * TCP on one loopback port; `TYPE STATUS HOST_ID TIMESTAMP PAYLOAD`; base64-decode, inflate (a failure
 * drops the message), RSA-decrypt with the private key when one is configured (PKCS#1 v1.5 in
 * modulus-sized blocks; a failed decrypt is ignored and the bytes are used as they are); the per-host,
 * per-type timestamp gate (older than the last accepted: dropped; unknown host: dropped; ts 0 bypasses
 * both); UDP datagrams of 65536 bytes or more dropped; then the payload parsed as a template. For
 * MONITOR_VM each `VM = [ ID, MONITOR ]` has its MONITOR decoded and parsed and is merged by ID.
 */
export const MONITORD_MAX_DATAGRAM = 65_536;
const GATED_TYPES = new Set(['MONITOR_VM', 'SYSTEM_HOST', 'STATE_VM', 'EXEC_VM', 'MONITOR_HOST']);
const TYPES = new Set([...GATED_TYPES, 'BEACON_HOST', 'START_MONITOR', 'STOP_MONITOR', 'LOG']);

export interface ReceivedMessage {
  transport: 'udp' | 'tcp';
  type: string;
  status: string;
  hostId: number;
  timestamp: number;
  /** The decoded payload text. */
  data: string;
  /** True when the payload was RSA-encrypted and decrypted with the configured private key. */
  decrypted: boolean;
  template: Template;
}

export interface Dropped {
  transport: 'udp' | 'tcp';
  reason: 'too-large' | 'malformed' | 'inflate' | 'out-of-order' | 'unknown-host' | 'template';
  line: string;
}

export interface FakeMonitordOptions {
  /** Port to listen on (0: any free port, the same for UDP and TCP). */
  port?: number;
  privateKey?: KeyObject;
  /** Host ids monitord knows; messages from others (except ts 0) are dropped. Default: any. */
  knownHosts?: readonly number[];
}

export class FakeMonitord {
  readonly accepted: ReceivedMessage[] = [];
  readonly dropped: Dropped[] = [];
  /** VM id → merged MONITOR attributes (what monitord stores for the VM). */
  readonly vms = new Map<number, Template>();
  /** host id → the last SYSTEM_HOST template. */
  readonly systemHost = new Map<number, Template>();
  private readonly lastTs = new Map<string, number>();
  private waiters: Array<() => void> = [];

  private constructor(
    readonly port: number,
    private readonly udp: SocketAsPromised,
    private readonly tcp: Server,
    private readonly opts: FakeMonitordOptions,
  ) {}

  static async start(opts: FakeMonitordOptions = {}): Promise<FakeMonitord> {
    for (let attempt = 0; ; attempt++) {
      const udp = DgramAsPromised.createSocket('udp4');
      // Large datagrams must reach the size check instead of being cut by a small receive buffer.
      const address = await udp.bind(opts.port ?? 0, '127.0.0.1');
      const tcp = createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(address.port, '127.0.0.1', () => resolve());
        });
      } catch (err) {
        await udp.close();
        if (opts.port || attempt > 5) throw err;
        continue;
      }
      const fake = new FakeMonitord(address.port, udp, tcp, opts);
      fake.serve();
      return fake;
    }
  }

  /** Resolves once `predicate` holds (checked after every message), or rejects after `timeoutMs`. */
  async waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `fake monitord: timed out waiting for ${what} (accepted ${this.accepted.length}, dropped ${JSON.stringify(this.dropped.map((d) => d.reason))})`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Disk sizes monitord holds for a VM: disk id → MiB, and "disk/snap" → MiB. */
  diskSizes(vmId: number): { disks: Record<number, number>; snapshots: Record<string, number> } {
    const vm = this.vms.get(vmId);
    const disks: Record<number, number> = {};
    const snapshots: Record<string, number> = {};
    for (const d of vectors(vm ?? {}, 'DISK_SIZE')) disks[Number(d['ID'])] = Number(d['SIZE']);
    for (const s of vectors(vm ?? {}, 'SNAPSHOT_SIZE')) {
      snapshots[`${s['DISK_ID']}/${s['ID']}`] = Number(s['SIZE']);
    }
    return { disks, snapshots };
  }

  async close(): Promise<void> {
    await this.udp.close();
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }

  private serve(): void {
    void (async () => {
      for await (const packet of this.udp) {
        if (packet.msg.length >= MONITORD_MAX_DATAGRAM) {
          this.drop('udp', 'too-large', packet.msg.subarray(0, 60).toString());
        } else this.receive('udp', packet.msg.toString('latin1'));
      }
    })();
    this.tcp.on('connection', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      // One message per connection, read until the client closes.
      socket.on('end', () => {
        this.receive('tcp', Buffer.concat(chunks).toString('latin1'));
        socket.end();
      });
    });
  }

  private receive(transport: 'udp' | 'tcp', raw: string): void {
    const line = raw.replace(/\n+$/, '');
    const m = /^(\S+) (\S+) (-?\d+) (\d+) (\S*)$/.exec(line);
    if (!m || !TYPES.has(m[1] as string)) return this.drop(transport, 'malformed', line);
    const [, type, status, host, ts, payload] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const hostId = Number(host);
    const timestamp = Number(ts);
    let bytes: Buffer;
    try {
      bytes = inflateSync(Buffer.from(payload, 'base64'));
    } catch {
      return this.drop(transport, 'inflate', line);
    }
    let decrypted = false;
    if (this.opts.privateKey) {
      const plain = decryptOrKeep(bytes, this.opts.privateKey);
      decrypted = plain !== bytes;
      bytes = plain;
    }
    if (GATED_TYPES.has(type) && timestamp !== 0) {
      if (this.opts.knownHosts && !this.opts.knownHosts.includes(hostId)) {
        return this.drop(transport, 'unknown-host', line);
      }
      const key = `${hostId}/${type}`;
      if (timestamp < (this.lastTs.get(key) ?? 0)) return this.drop(transport, 'out-of-order', line);
      this.lastTs.set(key, timestamp);
    }
    const data = bytes.toString('utf8');
    let template: Template;
    try {
      template = parseTemplate(data);
      if (type === 'MONITOR_VM') this.mergeVms(template);
    } catch {
      return this.drop(transport, 'template', line);
    }
    if (type === 'SYSTEM_HOST') this.systemHost.set(hostId, template);
    this.accepted.push({ transport, type, status, hostId, timestamp, data, decrypted, template });
    this.wake();
  }

  private mergeVms(template: Template): void {
    for (const vm of vectors(template, 'VM')) {
      const id = Number(vm['ID']);
      const monitor = parseTemplate(Buffer.from(vm['MONITOR'] ?? '', 'base64').toString('utf8'));
      // Fragments of one VM (poll.rb's CPU/memory, monitor_ds's disks) are merged, not replaced.
      this.vms.set(id, { ...this.vms.get(id), ...monitor });
    }
  }

  private drop(transport: 'udp' | 'tcp', reason: Dropped['reason'], line: string): void {
    this.dropped.push({ transport, reason, line: line.slice(0, 120) });
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * PKCS#1 v1.5 decryption in modulus-sized blocks. Node 20 refuses RSA_PKCS1_PADDING for private
 * decryption (CVE-2023-46809), so each block is decrypted raw and its padding (00 02 PS 00 M) removed
 * here. As in monitord, a payload that does not decrypt is used as it is.
 */
function decryptOrKeep(bytes: Buffer, key: KeyObject): Buffer {
  const blockBytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  if (blockBytes === 0 || bytes.length % blockBytes !== 0) return bytes;
  try {
    const parts: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += blockBytes) {
      const block = privateDecrypt(
        { key, padding: constants.RSA_NO_PADDING },
        bytes.subarray(at, at + blockBytes),
      );
      const end = block.indexOf(0, 2);
      if (block[0] !== 0 || block[1] !== 2 || end < 10) return bytes;
      parts.push(block.subarray(end + 1));
    }
    return Buffer.concat(parts);
  } catch {
    return bytes;
  }
}
