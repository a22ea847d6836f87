import { randomBytes, type X509Certificate } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { identityOfCertificate } from '../../../common/src/certificate-role.js';
import { StorageError, oneLine, type Reason } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { ExtentReader } from './extent-reader.js';
import { FrameWriter } from './frame-writer.js';
import { chooseDigest, type DigestAlgorithm } from './digest-algorithms.js';
import { dataBytesOf, type Manifest } from './manifest.js';
import { clientProof, sameBytes, sessionKey, TranscriptMac } from './session-keys.js';
import { streamHasher } from './stream-hasher.js';
import { describeRefusal, type TicketStore } from './tickets.js';
import { tlsCipherOptions } from './tls-options.js';
import { openVerifiedFile, type FileIdentity } from './verified-open.js';
import {
  FrameReader,
  FrameType,
  HEADER_BYTES,
  PROTOCOL_VERSION,
  TLS_HANDSHAKE_BYTE,
  controlFrame,
  type FrameTypeValue,
} from './wire.js';

/** What a ticket lets its holder read: a confined local root and the manifest built at OpenSend. */
export interface SendJob {
  /** Real path (no symlink in any component) of what is sent, inside the roots. */
  root: string;
  /** The oned-view path, for logs. */
  path: string;
  manifest: Manifest;
  /**
   * The agent the coordinator named to pull it: under TLS only a client whose certificate carries
   * this name gets it (the plaintext mode has no client certificate; there the ticket alone counts).
   */
  receiver: string;
  /** Device and inode of each file at OpenSend: a file is served only if it is still that file. */
  files: ReadonlyMap<string, FileIdentity>;
  /** A file made for this send (a merged backup chain): told when the send starts and ends. */
  staged?: StagedSend;
}

/** The life of a file made only to be sent once: removed after its send (transfer-service.ts). */
export interface StagedSend {
  /** The ticket was redeemed: its send is starting. */
  claim(): void;
  /** The send ended, whatever the outcome. */
  end(): void;
}

/** A peer that connects and says nothing (or never finishes the handshake) is dropped. */
const HANDSHAKE_TIMEOUT_MS = 15_000;
/**
 * A receiver that stops reading for this long is dropped, freeing the buffers it pins: the default
 * of DataServerOptions.idleTimeoutMs (agent config data.idleTimeoutSeconds).
 */
const IDLE_TIMEOUT_MS = 120_000;
const HEX_64 = /^[0-9a-f]{64}$/;
const HEX_32 = /^[0-9a-f]{32}$/;

export interface DataServerOptions {
  tls: TlsMaterial;
  tickets: TicketStore<SendJob>;
  /** Also accept the authenticated plaintext mode (see session-keys.ts). Off by default. */
  allowPlaintext: boolean;
  logger: Logger;
  /** Told the data bytes of each completed send (the agent's metrics). */
  onSent?: (bytes: number) => void;
  /** A receiver that reads nothing for this long is dropped (default 120 s). */
  idleTimeoutMs?: number;
}

/**
 * The sending side of the data path: a listener where receiving agents present tickets and get the
 * manifest, the data extents and per-file digests. Mutual TLS (client certificate from the cloud's
 * CA) unless plaintext was explicitly allowed; the first byte tells a TLS ClientHello from our own
 * HELLO frame, so one port serves both and a refused mode gets a readable error, not a hang.
 */
export class DataServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly tlsServer: tls.Server;

  constructor(private readonly opts: DataServerOptions) {
    // Never listens itself: it only runs the TLS side of connections handed over by onConnection.
    this.tlsServer = tls.createServer({
      ca: opts.tls.ca,
      cert: opts.tls.cert,
      key: opts.tls.key,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...tlsCipherOptions,
    });
    this.tlsServer.on('secureConnection', (secure: tls.TLSSocket) => {
      // Checked again here: never serve a client whose certificate did not verify, nor one whose
      // certificate we cannot hold a ticket's receiver against.
      const client = secure.getPeerX509Certificate();
      if (!secure.authorized || !client) {
        secure.destroy();
        return;
      }
      const cn = secure.getPeerCertificate().subject?.CN;
      this.serve(secure, `${String(cn)}@${secure.remoteAddress ?? '?'}:${secure.remotePort ?? '?'}`, client);
    });
    this.tlsServer.on('tlsClientError', (err, socket) =>
      opts.logger.info(
        { peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, why: err.message },
        'data connection refused (TLS)',
      ),
    );
    this.server = net.createServer((socket) => this.onConnection(socket));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(raw: net.Socket): void {
    this.sockets.add(raw);
    raw.on('close', () => this.sockets.delete(raw));
    raw.on('error', (err) =>
      this.opts.logger.debug({ err, peer: raw.remoteAddress }, 'data connection error'),
    );
    raw.setNoDelay(true);
    raw.setTimeout(HANDSHAKE_TIMEOUT_MS, () => raw.destroy());
    const peer = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`;
    raw.once('data', (first: Buffer) => {
      raw.pause();
      raw.unshift(first);
      if (first[0] === TLS_HANDSHAKE_BYTE) {
        // The TLS server takes over the TCP handle and replays what we unshifted; it verifies the
        // client certificate against our CA and drops the connection if it does not verify.
        this.tlsServer.emit('connection', raw);
      } else if (this.opts.allowPlaintext) {
        this.serve(raw, `plaintext@${peer}`);
      } else {
        raw.end(
          controlFrame(FrameType.ERROR, {
            reason: 'TRANSFER_FAILED',
            message: 'this agent accepts data connections only over mutual TLS',
          }),
        );
      }
    });
  }

  private serve(socket: net.Socket, peer: string, client?: X509Certificate): void {
    const log = this.opts.logger.child({ peer });
    const inbox = new ControlInbox(socket);
    const out = new FrameWriter(socket);
    const started = performance.now();
    const served: { job?: SendJob } = {};
    this.session(socket, inbox, out, log, client, served)
      .finally(() => served.job?.staged?.end())
      .then(
        (summary) => {
          log.info({ ...summary, ms: Math.round(performance.now() - started) }, 'data sent');
          this.opts.onSent?.(summary.bytes);
          socket.end();
        },
        (err: unknown) => {
          const reason: Reason = err instanceof StorageError ? err.reason : 'TRANSFER_FAILED';
          const message = oneLine(err instanceof Error ? err.message : String(err));
          log.warn({ reason, why: message }, 'data send failed');
          if (!socket.destroyed && socket.writable)
            socket.end(controlFrame(FrameType.ERROR, { reason, message }));
          else socket.destroy();
        },
      );
  }

  private async session(
    socket: net.Socket,
    inbox: ControlInbox,
    out: FrameWriter,
    log: Logger,
    client: X509Certificate | undefined,
    served: { job?: SendJob },
  ): Promise<{ path: string; bytes: number; files: number; digest: DigestAlgorithm }> {
    const hello = parseJson(await inbox.next(FrameType.HELLO)) as {
      version?: unknown;
      ticketId?: unknown;
      nonce?: unknown;
      digests?: unknown;
    };
    if (hello.version !== PROTOCOL_VERSION)
      throw new StorageError('TRANSFER_FAILED', `unsupported data protocol version ${String(hello.version)}`);
    if (typeof hello.ticketId !== 'string' || !HEX_64.test(hello.ticketId))
      throw new StorageError('TICKET_INVALID', 'malformed ticket id');
    if (typeof hello.nonce !== 'string' || !HEX_32.test(hello.nonce))
      throw new StorageError('TRANSFER_FAILED', 'malformed nonce');
    const algorithm = chooseDigest(hello.digests, client !== undefined);
    const id = hello.ticketId;
    const state = this.opts.tickets.peek(id);
    if ('refused' in state) throw new StorageError('TICKET_INVALID', describeRefusal(state.refused));
    // Before the challenge: another agent that got hold of the ticket learns nothing more and
    // does not use it up; the agent it was issued for can still redeem it.
    if (client) checkReceiver(state.payload.receiver, client);

    const serverNonce = randomBytes(16);
    await out.control(controlFrame(FrameType.CHALLENGE, { nonce: serverNonce.toString('hex') }));
    const key = sessionKey(state.ticket, Buffer.from(hello.nonce, 'hex'), serverNonce);
    const proof = await inbox.next(FrameType.PROOF);
    if (!sameBytes(proof, clientProof(key)))
      throw new StorageError('TICKET_INVALID', 'ticket proof does not match');
    // Consumed only after the proof: someone who merely saw the ticket id cannot burn the ticket.
    const granted = this.opts.tickets.consume(id);
    if ('refused' in granted) throw new StorageError('TICKET_INVALID', describeRefusal(granted.refused));
    const job = granted.payload;
    served.job = job;
    job.staged?.claim();
    log.info({ path: job.path }, 'data send starting');
    const idleMs = this.opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    socket.setTimeout(idleMs, () => socket.destroy(new Error(`receiver idle for ${idleMs / 1000} s`)));

    const mac = new TranscriptMac(key);
    const sendControl = async (type: FrameTypeValue, payload: Buffer | object): Promise<void> => {
      const frame = controlFrame(type, payload);
      mac.add(frame);
      await out.control(frame);
    };
    const manifest: Manifest = { ...job.manifest, digest: algorithm };
    await sendControl(FrameType.MANIFEST, manifest);
    // The check runs beside the reads and the socket (SHA-256 in a worker for large transfers).
    const hasher = streamHasher(dataBytesOf(job.manifest), algorithm);
    const reader = new ExtentReader(hasher);
    let bytes = 0;
    let files = 0;
    try {
      for (const entry of job.manifest.entries) {
        if (entry.kind !== 'file') continue;
        const local = entry.path === '' ? job.root : join(job.root, entry.path);
        const label = `send ${entry.path === '' ? job.path : `${job.path}/${entry.path}`}`;
        // Nothing is read before the open descriptor is proven to be the file OpenSend described.
        const { fh } = await openVerifiedFile(local, label, job.files.get(entry.path));
        let digest: Buffer;
        try {
          digest = await reader.stream(fh, entry.extents ?? [], (block, length, done) => {
            bytes += length;
            return out.data(block.buf.subarray(0, HEADER_BYTES + length), done);
          });
        } finally {
          await fh.close();
        }
        files += 1;
        await sendControl(FrameType.FILE_DONE, digest);
      }
    } finally {
      await hasher.close();
    }
    await out.control(controlFrame(FrameType.END, mac.digest()));
    return { path: job.path, bytes, files, digest: algorithm };
  }
}

/** The ticket's receiver must be the agent whose certificate opened this connection. */
function checkReceiver(receiver: string, client: X509Certificate): void {
  if (client.checkHost(receiver, { wildcards: false }) !== undefined) return;
  const { name } = identityOfCertificate(client);
  throw new StorageError('TICKET_INVALID', `ticket was issued for ${receiver} to pull, not for ${name}`);
}

function parseJson(payload: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new StorageError('TRANSFER_FAILED', 'malformed HELLO frame');
}

/** Control frames from the receiver, awaited one at a time; it never sends DATA. */
class ControlInbox {
  private readonly frames: { type: FrameTypeValue; payload: Buffer }[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(socket: net.Socket) {
    const reader = new FrameReader(
      {
        control: (type, payload) => {
          if (type === FrameType.ERROR) this.fail(new Error(`receiver: ${peerMessage(payload)}`));
          else this.frames.push({ type, payload });
          this.wake();
        },
        data: () => {
          throw new Error('unexpected DATA from the receiver');
        },
      },
      64 * 1024,
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        socket.destroy();
      }
    });
    socket.on('close', () => this.fail(new Error('connection closed by the receiver')));
    socket.resume();
  }

  async next(type: FrameTypeValue): Promise<Buffer> {
    for (;;) {
      const f = this.frames.shift();
      if (f) {
        if (f.type !== type)
          throw new StorageError(
            'TRANSFER_FAILED',
            `protocol error: unexpected frame 0x${f.type.toString(16)}`,
          );
        return f.payload;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

function peerMessage(payload: Buffer): string {
  try {
    const v = JSON.parse(payload.toString('utf8')) as { message?: unknown };
    return typeof v.message === 'string' ? oneLine(v.message) : 'unknown error';
  } catch {
    return 'unknown error';
  }
}
