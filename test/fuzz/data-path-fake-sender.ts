// A sender on loopback that holds what a real sender holds (the ticket it "issued", and under TLS a
// certificate from the cloud's CA for its agent name): it answers the receiving agent's HELLO as
// the protocol says, checks the agent's proof, then plays a generated (often broken) stream and
// closes. One case at a time.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../../common/src/tls.js';
import { clientProof, sameBytes, sessionKey, ticketId } from '../../agent/src/transfer/session-keys.js';
import { tlsCipherOptions } from '../../agent/src/transfer/tls-options.js';
import { FrameReader, FrameType } from '../../agent/src/transfer/wire.js';
import { challengeBytes, senderStream, type SenderCase } from './data-path-sender-streams.js';

export interface Played {
  /** The agent connected. */
  connected: boolean;
  /** The stream differed from an honest sender's. */
  changed: boolean;
  /** What the agent did wrong in the handshake (a bad ticket id or proof). */
  anomalies: string[];
}

interface Turn {
  c: SenderCase;
  ticket: string;
  done: (p: Played) => void;
}

export class FakeSender {
  private turn: Turn | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(material?: TlsMaterial): Promise<FakeSender> {
    const holder: { self?: FakeSender } = {};
    const onSocket = (s: net.Socket): void => holder.self?.accept(s);
    const server = material
      ? tls.createServer(
          { ...material, requestCert: true, rejectUnauthorized: true, ...tlsCipherOptions },
          onSocket,
        )
      : net.createServer(onSocket);
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.self = new FakeSender(server, (server.address() as net.AddressInfo).port);
    return holder.self;
  }

  /** Plays `c` to the next connection; resolves once that connection has closed. */
  expect(c: SenderCase, ticket: string): { played: Promise<Played>; cancel: () => void } {
    let done!: (p: Played) => void;
    const played = new Promise<Played>((resolve) => (done = resolve));
    this.turn = { c, ticket, done };
    return {
      played,
      cancel: () => {
        if (this.turn?.done !== done) return;
        this.turn = undefined;
        done({ connected: false, changed: true, anomalies: [] });
      },
    };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    const turn = this.turn;
    this.turn = undefined;
    if (!turn) {
      socket.destroy();
      return;
    }
    const result: Played = { connected: true, changed: true, anomalies: [] };
    socket.on('close', () => {
      this.sockets.delete(socket);
      turn.done(result);
    });
    const serverNonce = randomBytes(16);
    let key: Buffer | undefined;
    const play = (): void => {
      const { bytes, changed } = senderStream(turn.c, key as Buffer);
      result.changed = changed;
      socket.write(bytes);
      // A reset needs the TCP handle; a TLS socket is destroyed instead (no close_notify).
      if (!turn.c.reset) socket.end();
      else if (socket instanceof tls.TLSSocket) socket.destroy();
      else socket.resetAndDestroy();
    };
    const reader = new FrameReader(
      {
        control: (type, payload) => {
          if (type === FrameType.HELLO && !key) {
            const hello = JSON.parse(payload.toString()) as {
              version?: unknown;
              ticketId?: unknown;
              nonce?: unknown;
            };
            if (hello.version !== 1 || hello.ticketId !== ticketId(turn.ticket))
              result.anomalies.push(`HELLO names another ticket or version: ${payload.toString()}`);
            key = sessionKey(turn.ticket, Buffer.from(String(hello.nonce), 'hex'), serverNonce);
            socket.write(challengeBytes(turn.c.challenge, serverNonce));
            if (turn.c.challenge !== 'valid') play();
          } else if (type === FrameType.PROOF && key) {
            if (!sameBytes(payload, clientProof(key))) result.anomalies.push('the agent sent a wrong proof');
            play();
          } else {
            result.anomalies.push(`the agent sent frame 0x${type.toString(16)}`);
            socket.destroy();
          }
        },
        data: () => {
          result.anomalies.push('the agent sent DATA');
          socket.destroy();
        },
      },
      64 * 1024,
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        result.anomalies.push(`unreadable from the agent: ${(err as Error).message}`);
        socket.destroy();
      }
    });
  }
}
