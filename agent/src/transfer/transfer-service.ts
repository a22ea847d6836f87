import { lstat, realpath, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CERTIFICATE_NAME_PATTERN } from '../../../common/src/certificate-role.js';
import { StorageError, reasonForErrno } from '../../../common/src/errors.js';
import type { Logger } from '../../../common/src/log.js';
import type { TlsMaterial } from '../../../common/src/tls.js';
import {
  FileKind,
  type OpenSendRequest,
  type OpenSendResponse,
  type ReceiveRequest,
  type ReceiveResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { Progress } from '../jobs/job-registry.js';
import { pull, type PullResult } from './data-client.js';
import { DataServer, type SendJob, type StagedSend } from './data-server.js';
import { isInside } from '../paths/roots.js';
import { buildManifest, dataBytesOf, rootKind, type EntryKind } from './manifest.js';
import { replaceIntoPlace } from '../../../common/src/files/atomic-file.js';
import { receiveTempName, sweepDirectory, sweepRoot } from './stale-temps.js';
import { DEFAULT_TICKET_TTL_SECONDS, TicketStore } from './tickets.js';
import { descriptorPath, openVerifiedDirectory, type FileIdentity } from './verified-open.js';

/** A ticket is for one transfer that starts right away; a day-long capability is a mistake. */
const MAX_TICKET_TTL_SECONDS = 3600;
const TICKET_PATTERN = /^[0-9a-f]{64}$/;
/** A staged file outlives its unused ticket by this much (a receiver that just made it in). */
const STAGED_GRACE_MS = 5_000;

export interface TransferServiceOptions {
  /** This agent's name (its certificate name). */
  name: string;
  tls: TlsMaterial;
  /** host:port of the data listener; port 0 picks a free one. */
  listen: string;
  /** Host other agents dial; defaults to the listen host (or the hostname for a wildcard). */
  advertiseHost?: string;
  /** Maps and confines an oned-view path to a local one; throws a StorageError. */
  resolve: (onedPath: string, field: string) => Promise<string>;
  /**
   * Real paths of this agent's datastore roots: a source that is a symlink is followed only to
   * inside one, and stale temporaries are swept below them at start.
   */
  realRoots: () => Promise<readonly string[]>;
  logger: Logger;
  /**
   * Use the authenticated plaintext data mode (ticket-keyed HMAC over manifest and SHA-256
   * digests, no encryption) when receiving, and accept it when sending. Off by default: the
   * data path is mutual TLS. Only for trusted storage networks where TLS is the bottleneck: a
   * plaintext client shows no certificate, so a ticket is not held to its receiver's name there.
   */
  plaintextData?: boolean;
  /** Caps each pull's throughput (agent config data.rateLimitBytesPerSecond); 0 or absent: unlimited. */
  rateLimitBytesPerSecond?: number;
  /** Drops a data connection silent this long, either way (data.idleTimeoutSeconds); absent: 120 s. */
  idleTimeoutMs?: number;
  /** The clock tickets expire by (milliseconds, monotonic by default); tests inject one. */
  now?: () => number;
  /**
   * Names of temporaries this process is using (receives in progress, export copies being
   * served): the stale-temporary sweeps leave them alone. Shared with the export listener.
   */
  activeTemps?: Set<string>;
  /** Told the data bytes of each completed send (the agent's metrics). */
  onSent?: (bytes: number) => void;
}

const KIND_TO_PROTO: Record<EntryKind, FileKind> = {
  file: FileKind.FILE_KIND_FILE,
  dir: FileKind.FILE_KIND_DIRECTORY,
  symlink: FileKind.FILE_KIND_SYMLINK,
};

/**
 * The agent's data path: OpenSend (describe what to send and issue a ticket) and Receive (pull
 * what a ticket names from another agent into a local path, atomically). gRPC handlers call these;
 * this class knows nothing of gRPC beyond the generated message types.
 */
export class TransferService {
  private readonly tickets: TicketStore<SendJob>;
  /** Temporaries (names) in use now (opts.activeTemps): the stale-temporary sweeps leave them alone. */
  private readonly receiving: Set<string>;
  private readonly server: DataServer;
  private readonly listenHost: string;
  private readonly listenPort: number;
  private port = 0;
  /** Staged files waiting for their send (openStagedFile): each removes its file once. */
  private readonly staged = new Set<() => Promise<void>>();

  constructor(private readonly opts: TransferServiceOptions) {
    this.tickets = new TicketStore<SendJob>(opts.now);
    this.receiving = opts.activeTemps ?? new Set<string>();
    const { host, port } = splitHostPort(opts.listen, 'listen');
    this.listenHost = host;
    this.listenPort = port;
    this.server = new DataServer({
      tls: opts.tls,
      tickets: this.tickets,
      allowPlaintext: opts.plaintextData ?? false,
      logger: opts.logger.child({ component: 'data-server' }),
      ...(opts.onSent ? { onSent: opts.onSent } : {}),
      ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    });
  }

  /** Sweeps stale temporaries (an earlier life of this agent may have been killed mid-receive), then listens. */
  async start(): Promise<void> {
    for (const root of await this.opts.realRoots()) {
      const removed = await sweepRoot(root, { agent: this.opts.name, active: this.receiving });
      if (removed.length > 0) this.opts.logger.info({ removed }, 'removed stale temporaries');
    }
    this.port = await this.server.listen(this.listenHost, this.listenPort);
    this.opts.logger.info(
      { address: this.dataAddress(), plaintext: this.opts.plaintextData ?? false },
      'data path listening',
    );
  }

  /** This agent's name (its certificate name): what a sender binds a ticket for this agent to. */
  get name(): string {
    return this.opts.name;
  }

  dataAddress(): string {
    const wildcard = this.listenHost === '0.0.0.0' || this.listenHost === '::';
    const host = this.opts.advertiseHost ?? (wildcard ? hostname() : this.listenHost);
    return `${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  async openSend(req: OpenSendRequest): Promise<OpenSendResponse> {
    if (!req.path) throw new StorageError('INVALID_ARGUMENT', 'OpenSend: path is required');
    checkTicketRequest('OpenSend', req);
    const root = await this.sendRoot(req.path);
    return this.issue(root, await buildManifest(root), req);
  }

  /**
   * OpenImportSource's half on the data path: a ticket for one regular file outside the roots, at
   * `file` (a real path its caller has checked against the import rules,
   * docs/image-datastore.md#registering-an-image-cp-on-the-agent). It is served like any OpenSend
   * file: opened without following symlinks and proven to be the very file (device and inode) the
   * manifest described. `path` is the operator's name for it, for logs.
   */
  async openImportSource(req: OpenSendRequest & { file: string }): Promise<OpenSendResponse> {
    checkTicketRequest('OpenImportSource', req);
    const source = await buildManifest(req.file);
    if (rootKind(source.manifest) !== 'file')
      throw new StorageError('INVALID_ARGUMENT', `OpenImportSource: ${req.path} is not a regular file`);
    return this.issue(req.file, source, req);
  }

  /**
   * A ticket for one regular file this agent made only to be sent (OpenBackupChain's merged chain,
   * docs/backups.md#restoring-from-the-repository): `release` removes it once the send ends, or
   * when the ticket expires unused, or when the agent stops, whichever comes first (once).
   */
  async openStagedFile(
    req: OpenSendRequest & { file: string; release: () => Promise<void> },
  ): Promise<OpenSendResponse> {
    checkTicketRequest('OpenSend', req);
    const source = await buildManifest(req.file);
    if (rootKind(source.manifest) !== 'file')
      throw new StorageError('INVALID_ARGUMENT', `OpenSend: ${req.path} is not a regular file`);
    let claimed = false;
    const finish = async (): Promise<void> => {
      if (!this.staged.delete(finish)) return;
      clearTimeout(expiry);
      await req.release().then(
        () => this.opts.logger.info({ path: req.path, claimed }, 'staged send file removed'),
        (err: unknown) =>
          this.opts.logger.warn({ path: req.path, err }, 'could not remove a staged send file'),
      );
    };
    const ttlMs = (req.ttlSeconds || DEFAULT_TICKET_TTL_SECONDS) * 1000;
    const expiry = setTimeout(() => void (claimed || finish()), ttlMs + STAGED_GRACE_MS);
    expiry.unref();
    this.staged.add(finish);
    return this.issue(req.file, source, req, { claim: () => (claimed = true), end: () => void finish() });
  }

  private issue(
    root: string,
    { manifest, files }: Awaited<ReturnType<typeof buildManifest>>,
    req: OpenSendRequest,
    staged?: StagedSend,
  ): OpenSendResponse {
    const { ticket } = this.tickets.issue(
      { root, path: req.path, manifest, files, receiver: req.receiverName, ...(staged ? { staged } : {}) },
      req.ttlSeconds || DEFAULT_TICKET_TTL_SECONDS,
    );
    const dataBytes = dataBytesOf(manifest);
    this.opts.logger.info(
      { path: req.path, receiver: req.receiverName, dataBytes, entries: manifest.entries.length },
      'send ticket issued',
    );
    return {
      ticket,
      dataAddress: this.dataAddress(),
      kind: KIND_TO_PROTO[rootKind(manifest)],
      dataBytes,
      entries: manifest.entries.length,
    };
  }

  async receive(
    req: ReceiveRequest,
    signal: AbortSignal,
    progress?: (p: Progress) => void,
  ): Promise<ReceiveResponse> {
    if (!TICKET_PATTERN.test(req.ticket))
      throw new StorageError('INVALID_ARGUMENT', 'Receive: ticket must be 64 hex digits');
    splitHostPort(req.dataAddress, 'Receive: data_address');
    if (!req.sourceName) throw new StorageError('INVALID_ARGUMENT', 'Receive: source_name is required');
    if (!req.destination) throw new StorageError('INVALID_ARGUMENT', 'Receive: destination is required');
    const what = `receive ${this.opts.name}:${req.destination} from ${req.sourceName} (${req.dataAddress})`;
    const local = await this.opts.resolve(req.destination, 'destination');
    const parent = await stat(dirname(local)).catch(() => undefined);
    if (!parent?.isDirectory())
      throw new StorageError('NOT_FOUND', `${what}: parent directory does not exist`);
    // Everything below happens through the directory resolved now, held open: a symlink swapped in
    // for it (or an ancestor) later cannot redirect the temporary, the rename or the sweep.
    const dir: FileHandle = await openVerifiedDirectory(dirname(local), 'destination directory').catch(
      (err: unknown) => {
        throw wrap(err, what);
      },
    );
    const at = descriptorPath(dir);
    const name = basename(local);
    const tempName = receiveTempName(name, this.opts.name);
    const temp = join(at, tempName);
    this.receiving.add(tempName);
    const started = performance.now();
    const log = this.opts.logger.child({ destination: req.destination, source: req.sourceName });
    try {
      const swept = await sweepDirectory(at, { agent: this.opts.name, active: this.receiving }, name);
      if (swept.length > 0) log.info({ removed: swept }, 'removed stale temporaries');
      const result = await pull({
        address: req.dataAddress,
        serverName: req.sourceName,
        tls: this.opts.tls,
        plaintext: this.opts.plaintextData ?? false,
        ticket: req.ticket,
        temp,
        tempReal: join(dirname(local), tempName),
        sparse: req.sparse,
        signal,
        bytesPerSecond: this.opts.rateLimitBytesPerSecond ?? 0,
        ...(this.opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.opts.idleTimeoutMs } : {}),
        progress,
      });
      if (signal.aborted) throw new StorageError('TRANSFER_FAILED', 'cancelled');
      await expectSame(temp, result.identity);
      await replaceIntoPlace(temp, join(at, name));
      const durationMs = Math.round(performance.now() - started);
      log.info({ bytes: result.bytes, files: result.files, durationMs }, 'data received');
      return { bytes: result.bytes, files: result.files, durationMs, digest: result.digest };
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      const e = wrap(err, what);
      log.warn({ reason: e.reason, why: e.message }, 'receive failed');
      throw e;
    } finally {
      this.receiving.delete(tempName);
      await dir.close();
    }
  }

  /**
   * Pulls what a ticket names into `temp`, a new name the caller chose (and removes on failure),
   * whose real path is `tempReal`, with each file's whole-content SHA-256 (PullResult.fileDigests):
   * the data path's half of ReceiveBackup
   * (docs/backups.md#repository), which names, checks and renames the result itself.
   */
  async pullInto(
    req: { ticket: string; dataAddress: string; sourceName: string; sparse: boolean },
    temp: string,
    tempReal: string,
    signal: AbortSignal,
    progress?: (p: Progress) => void,
  ): Promise<PullResult> {
    if (!TICKET_PATTERN.test(req.ticket))
      throw new StorageError('INVALID_ARGUMENT', 'ticket must be 64 hex digits');
    splitHostPort(req.dataAddress, 'data_address');
    if (!CERTIFICATE_NAME_PATTERN.test(req.sourceName))
      throw new StorageError('INVALID_ARGUMENT', `source_name "${req.sourceName}" is not an agent name`);
    const result = await pull({
      address: req.dataAddress,
      serverName: req.sourceName,
      tls: this.opts.tls,
      plaintext: this.opts.plaintextData ?? false,
      ticket: req.ticket,
      temp,
      tempReal,
      sparse: req.sparse,
      signal,
      contentDigests: true,
      bytesPerSecond: this.opts.rateLimitBytesPerSecond ?? 0,
      ...(this.opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.opts.idleTimeoutMs } : {}),
      progress,
      progressPhase: 'receiving-backup',
    });
    if (signal.aborted) throw new StorageError('TRANSFER_FAILED', 'cancelled');
    await expectSame(temp, result.identity);
    return result;
  }

  /**
   * The real path of what OpenSend sends. A source that is a symlink (an image-datastore entry
   * linked to a disk, a VM directory linked elsewhere) is followed, never sent as a link, and only
   * to inside the roots: otherwise the receiver would get a link to whatever its host has there.
   */
  private async sendRoot(onedPath: string): Promise<string> {
    const what = `send ${this.opts.name}:${onedPath}`;
    const local = await this.opts.resolve(onedPath, 'path');
    let real: string;
    let link: boolean;
    try {
      link = (await lstat(local)).isSymbolicLink();
      real = await realpath(local);
    } catch (err) {
      const { reason, why } = reasonForErrno(err);
      throw new StorageError(reason, `${what}: ${why}`, { cause: err });
    }
    const roots = await this.opts.realRoots();
    if (!roots.some((r) => isInside(real, r))) {
      throw new StorageError(
        'PATH_OUTSIDE_ROOTS',
        `${what}: ${link ? 'a symlink to' : 'resolves to'} ${real}, outside the datastore roots`,
      );
    }
    return real;
  }

  async close(): Promise<void> {
    this.tickets.clear();
    await Promise.all([...this.staged].map((finish) => finish()));
    await this.server.close();
  }
}

/** A ticket is bound to a named receiver and lives briefly: what OpenSend and OpenImportSource check. */
function checkTicketRequest(rpc: string, req: OpenSendRequest): void {
  // An unbound ticket would let any agent of the cloud that saw it pull the data.
  if (!req.receiverName)
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${rpc}: receiver_name is required (the agent that will pull)`,
    );
  if (!CERTIFICATE_NAME_PATTERN.test(req.receiverName))
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${rpc}: receiver_name "${req.receiverName}" is not an agent name`,
    );
  if (req.ttlSeconds > MAX_TICKET_TTL_SECONDS)
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${rpc}: ttl_seconds ${req.ttlSeconds} exceeds ${MAX_TICKET_TTL_SECONDS}`,
    );
}

/** Refuses to rename into place anything but the temporary root the receive created. */
async function expectSame(temp: string, created: FileIdentity | undefined): Promise<void> {
  const st = await lstat(temp, { bigint: true });
  if (!created || st.dev !== created.dev || st.ino !== created.ino)
    throw new StorageError('TRANSFER_FAILED', `the temporary ${basename(temp)} was replaced while receiving`);
}

/** `what` failed: a StorageError whose message starts with `what`. */
function wrap(err: unknown, what: string): StorageError {
  const e =
    err instanceof StorageError
      ? err
      : new StorageError(reasonForErrno(err).reason, reasonForErrno(err).why, { cause: err });
  return new StorageError(e.reason, `${what}: ${e.message}`, { cause: err });
}

function splitHostPort(value: string, field: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : -1;
  if (!m || port < 0 || port > 65535)
    throw new StorageError('INVALID_ARGUMENT', `${field}: "${value}" is not host:port`);
  return { host: m[1] as string, port };
}
