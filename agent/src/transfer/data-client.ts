import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { StorageError, oneLine, reasonForErrno } from '../../../common/src/errors.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import { Throttle } from '../import/throttle.js';
import type { Progress } from '../jobs/job-registry.js';
import { acceptDigest, offeredDigests } from './digest-algorithms.js';
import { dataBytesOf, manifestProblem, type EntryKind, type Manifest } from './manifest.js';
import { clientProof, sameBytes, sessionKey, ticketId, TranscriptMac } from './session-keys.js';
import { tlsCipherOptions } from './tls-options.js';
import { TreeWriter } from './tree-writer.js';
import type { FileIdentity } from './verified-open.js';
import {
  FrameReader,
  FrameType,
  PROTOCOL_VERSION,
  ProtocolError,
  controlFrame,
  knownReason,
} from './wire.js';

/** Connecting and the handshake must finish within this; a silent peer is an unavailable one. */
const CONNECT_TIMEOUT_MS = 15_000;
/**
 * No byte from the sender for this long ends the transfer (the sender's disk may be stuck, or the
 * link cut): the default of PullOptions.idleTimeoutMs (agent config data.idleTimeoutSeconds).
 */
const IDLE_TIMEOUT_MS = 120_000;

export interface PullOptions {
  /** host:port of the sender's data listener. */
  address: string;
  /** Name the sender's certificate must carry (its agent name). */
  serverName: string;
  tls: TlsMaterial;
  /** Use the authenticated plaintext mode instead of mutual TLS. */
  plaintext: boolean;
  ticket: string;
  /** Fresh temporary path to build into; the caller renames it into place or removes it. */
  temp: string;
  /** The real path `temp` names (temp may go through a directory descriptor). */
  tempReal: string;
  sparse: boolean;
  signal: AbortSignal;
  /** Fill PullResult.fileDigests (TreeWriterOptions.contentDigests). */
  contentDigests?: boolean;
  /**
   * Caps this transfer's throughput (agent config data.rateLimitBytesPerSecond): the socket is
   * paused while a token bucket is in debt, so TCP slows the sender. 0 or absent: unlimited.
   */
  bytesPerSecond?: number;
  /** No byte from the sender for this long fails the pull (default 120 s). */
  idleTimeoutMs?: number;
  /**
   * Where progress goes (CallContext.progress): total is the manifest's data bytes (the extents
   * that actually travel: holes of a sparse file are not counted), done the data bytes taken from
   * the wire into the tree writer so far (at most its bounded queue ahead of the disk).
   */
  progress?: ((p: Progress) => void) | undefined;
  /** The phase the progress is reported under (default "receiving"). */
  progressPhase?: string;
}

export interface PullResult {
  kind: EntryKind;
  bytes: number;
  files: number;
  /** Hex SHA-256 over the per-file digests, in manifest order. */
  digest: string;
  /** Device and inode of the temporary root created: checked again before the rename. */
  identity: FileIdentity | undefined;
  /**
   * With `contentDigests`: each file received, by its path relative to the root (manifest order),
   * with the SHA-256 of its whole content, computed as it arrived: what a backup's SHA256SUMS is
   * written from, without a re-read. Empty otherwise.
   */
  fileDigests: Array<{ path: string; sha256: Buffer }>;
}

/**
 * The receiving side of the data path: connects to the sender, proves it holds the ticket, checks
 * the manifest, writes the tree under `temp` and verifies every file's digest and the sender's MAC
 * over the manifest and digests. Resolves only when everything is written and fsynced; on any
 * failure it stops, closes its files and rejects with a StorageError whose message says why
 * (the caller adds which transfer it was).
 */
export async function pull(o: PullOptions): Promise<PullResult> {
  const { host, port } = parseAddress(o.address);
  let tree: TreeWriter | undefined;
  const bucket = o.bytesPerSecond ? new Throttle(o.bytesPerSecond) : undefined;
  let throttled: NodeJS.Timeout | undefined;
  const idleMs = o.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  try {
    return await new Promise<PullResult>((resolve, reject) => {
      let settled = false;
      let ended = false;
      // Reading stops while the disk lags (the tree writer's pressure) or the rate limit waits.
      let pressure = false;
      const flow = (): void => {
        if (pressure || throttled) socket.pause();
        else socket.resume();
      };
      const socket = o.plaintext
        ? net.connect({ host, port })
        : tls.connect({
            host,
            port,
            ca: o.tls.ca,
            cert: o.tls.cert,
            key: o.tls.key,
            ...(net.isIP(o.serverName) === 0 ? { servername: o.serverName } : {}),
            // The sender must be the agent the coordinator named, whatever address we dialled.
            checkServerIdentity: (_host, cert) => tls.checkServerIdentity(o.serverName, cert),
            ...tlsCipherOptions,
          });
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(throttled);
        o.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(classify(err));
      };
      const onAbort = (): void => fail(new StorageError('TRANSFER_FAILED', 'cancelled'));
      if (o.signal.aborted) return onAbort();
      o.signal.addEventListener('abort', onAbort, { once: true });
      socket.setNoDelay(true);
      socket.setTimeout(CONNECT_TIMEOUT_MS, () =>
        fail(new StorageError('AGENT_UNAVAILABLE', `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      );
      socket.on('error', fail);
      let answered = false;
      socket.on('close', () => {
        if (ended) return;
        // A TLS server that rejects our certificate closes right after the handshake, without an
        // alert Node would report: say so rather than leave "closed" unexplained.
        fail(
          new StorageError(
            'TRANSFER_FAILED',
            answered || o.plaintext
              ? 'connection closed by the sender before the transfer completed'
              : "the sender closed the connection before answering: it did not accept this agent's certificate (signed by a CA it does not trust?) or is shutting down",
          ),
        );
      });

      const clientNonce = randomBytes(16);
      const offered = offeredDigests(o.plaintext);
      let mac: TranscriptMac | undefined;
      let key: Buffer | undefined;
      socket.once(o.plaintext ? 'connect' : 'secureConnect', () => {
        socket.write(
          controlFrame(FrameType.HELLO, {
            version: PROTOCOL_VERSION,
            ticketId: ticketId(o.ticket),
            nonce: clientNonce.toString('hex'),
            digests: offered,
          }),
        );
      });

      const reader = new FrameReader({
        control: (type, payload, frame) => {
          switch (type) {
            case FrameType.ERROR:
              throw senderError(payload);
            case FrameType.CHALLENGE: {
              if (key) throw new ProtocolError('second CHALLENGE');
              const nonce = parseNonce(payload);
              key = sessionKey(o.ticket, clientNonce, nonce);
              mac = new TranscriptMac(key);
              socket.write(controlFrame(FrameType.PROOF, clientProof(key)));
              socket.setTimeout(idleMs, () =>
                fail(
                  new StorageError(
                    'TRANSFER_FAILED',
                    `no data from the sender for ${idleMs / 1000} s (is the network between the two hosts down?)`,
                  ),
                ),
              );
              return;
            }
            case FrameType.MANIFEST: {
              if (!mac || tree) throw new ProtocolError('unexpected MANIFEST');
              mac.add(frame);
              const manifest = parseManifest(payload);
              const check = acceptDigest(manifest.digest, offered);
              o.progress?.({ done: 0, total: dataBytesOf(manifest), phase: o.progressPhase ?? 'receiving' });
              tree = new TreeWriter(o.temp, manifest, {
                sparse: o.sparse,
                rootReal: o.tempReal,
                onPressure: (tooMuch) => {
                  pressure = tooMuch;
                  flow();
                },
                onFailure: fail,
                contentDigests: o.contentDigests ?? false,
                digest: check,
              });
              return;
            }
            case FrameType.FILE_DONE:
              if (!mac || !tree) throw new ProtocolError('unexpected FILE_DONE');
              mac.add(frame);
              tree.fileDone(payload);
              return;
            case FrameType.END: {
              if (!mac || !tree) throw new ProtocolError('unexpected END');
              if (!sameBytes(payload, mac.digest())) {
                throw new StorageError(
                  'CHECKSUM_MISMATCH',
                  'the manifest or digests were altered in transit (MAC mismatch)',
                );
              }
              ended = true;
              socket.setTimeout(0);
              socket.end();
              const done = tree;
              done.complete().then(() => {
                if (settled) return;
                settled = true;
                o.signal.removeEventListener('abort', onAbort);
                resolve({
                  kind: done.kind,
                  bytes: done.bytes,
                  files: done.fileCount,
                  digest: createHash('sha256').update(Buffer.concat(done.digests)).digest('hex'),
                  identity: done.rootIdentity,
                  fileDigests: done.fileDigests,
                });
              }, fail);
              return;
            }
            default:
              throw new ProtocolError(`unexpected frame 0x${type.toString(16)}`);
          }
        },
        data: (bytes) => {
          if (!tree) throw new ProtocolError('DATA before MANIFEST');
          tree.write(bytes);
          o.progress?.({ done: tree.bytes });
          const wait = bucket?.debit(bytes.length) ?? 0;
          if (wait > 0 && !throttled) {
            throttled = setTimeout(() => {
              throttled = undefined;
              if (!settled) flow();
            }, wait);
            flow();
          }
        },
      });
      socket.on('data', (chunk: Buffer) => {
        answered = true;
        if (settled) return;
        try {
          reader.push(chunk);
        } catch (err) {
          fail(err);
        }
      });
    });
  } catch (err) {
    await tree?.abandon();
    throw err;
  } finally {
    clearTimeout(throttled);
  }
}

function parseAddress(address: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new StorageError('INVALID_ARGUMENT', `data_address "${address}" is not host:port`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

function parseNonce(payload: Buffer): Buffer {
  let v: { nonce?: unknown } | null = null;
  try {
    v = JSON.parse(payload.toString('utf8')) as { nonce?: unknown } | null;
  } catch {
    // a CHALLENGE that is not JSON is as malformed as one without a nonce
  }
  if (typeof v?.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(v.nonce))
    throw new ProtocolError('malformed CHALLENGE');
  return Buffer.from(v.nonce, 'hex');
}

function parseManifest(payload: Buffer): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError('manifest is not JSON');
  }
  const problem = manifestProblem(value);
  if (problem) throw new StorageError('UNSAFE_PATH', `refused the sender's manifest: ${problem}`);
  return value as Manifest;
}

function senderError(payload: Buffer): StorageError {
  try {
    const v = JSON.parse(payload.toString('utf8')) as { reason?: unknown; message?: unknown };
    const message = typeof v.message === 'string' ? oneLine(v.message) : 'unspecified error';
    // The sender's "unforeseen" is in the sender's log, not ours: here it is a failed transfer.
    const reason = knownReason(v.reason);
    return new StorageError(
      reason && reason !== 'INTERNAL' ? reason : 'TRANSFER_FAILED',
      `sender: ${message}`,
    );
  } catch {
    return new StorageError('TRANSFER_FAILED', 'sender: unreadable error');
  }
}

/** Codes Node gives a socket that never reached the peer: worth a retry, so UNAVAILABLE. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function classify(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  if (err instanceof ProtocolError)
    return new StorageError('TRANSFER_FAILED', `protocol error: ${err.message}`);
  const e = err as NodeJS.ErrnoException;
  const code = typeof e.code === 'string' ? e.code : '';
  if (UNREACHABLE.has(code))
    return new StorageError('AGENT_UNAVAILABLE', `cannot connect (${code})`, { cause: err });
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SIGNATURE|SELF_SIGNED/.test(code)) {
    return new StorageError('TRANSFER_FAILED', `TLS: ${oneLine(e.message)}`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new StorageError('TRANSFER_FAILED', 'connection reset by the sender', { cause: err });
  }
  const { reason, why } = reasonForErrno(err);
  return new StorageError(reason, why, { cause: err });
}
