import { isIPv6 } from 'node:net';
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import { StorageError, oneLine } from '../errors.js';

/**
 * How long to listen after a cycle's last datagram for the ICMP "port unreachable" a closed monitord
 * port answers with. UDP has no acknowledgement: that refusal is the only failure a sender can see.
 */
export const DEFAULT_SETTLE_MS = 30;

export interface MonitordAddress {
  address: string;
  port: number;
}

/**
 * Sends message lines to monitord over UDP (monitord.conf NETWORK/ADDRESS and PORT). The socket is
 * connected, so a refusal (nothing listening on that port) comes back as ECONNREFUSED and the send
 * fails: the caller backs off and retries. One socket is kept between cycles and replaced after an error.
 */
export class MonitordSender {
  private socket: SocketAsPromised | undefined;
  private refused: Error | undefined;

  constructor(
    readonly target: MonitordAddress,
    private readonly settleMs = DEFAULT_SETTLE_MS,
  ) {}

  /** Sends every message; rejects with MONITORD_UNREACHABLE naming monitord's address. */
  async send(messages: readonly string[]): Promise<void> {
    if (messages.length === 0) return;
    const where = `monitord ${this.target.address}:${this.target.port}`;
    try {
      const socket = await this.connected();
      for (const m of messages) {
        await new Promise<void>((resolve, reject) =>
          socket.socket.send(Buffer.from(m), (err) => (err ? reject(err) : resolve())),
        );
        this.throwIfRefused();
      }
      await new Promise((r) => setTimeout(r, this.settleMs));
      this.throwIfRefused();
    } catch (err) {
      await this.reset();
      throw new StorageError('MONITORD_UNREACHABLE', `send to ${where}: ${describe(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.reset();
  }

  private throwIfRefused(): void {
    const refused = this.refused;
    if (refused) {
      this.refused = undefined;
      throw refused;
    }
  }

  private async connected(): Promise<SocketAsPromised> {
    if (this.socket) return this.socket;
    const socket = DgramAsPromised.createSocket(isIPv6(this.target.address) ? 'udp6' : 'udp4');
    // Reading is what lets the kernel report ICMP errors on a connected UDP socket.
    socket.socket.on('message', () => undefined);
    socket.socket.on('error', (err) => {
      this.refused = err;
    });
    await new Promise<void>((resolve, reject) => {
      socket.socket.once('error', reject);
      socket.socket.connect(this.target.port, this.target.address, () => {
        socket.socket.off('error', reject);
        resolve();
      });
    });
    socket.socket.unref();
    this.socket = socket;
    return socket;
  }

  private async reset(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    this.refused = undefined;
    if (socket) await socket.close().catch(() => undefined);
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'refused (nothing listening on that port)';
  return oneLine(e instanceof Error ? e.message : String(err));
}
