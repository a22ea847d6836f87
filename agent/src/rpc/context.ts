import type { Logger } from '../../../common/src/log.js';
import type {
  OpenSendRequest,
  OpenSendResponse,
  ReceiveRequest,
  ReceiveResponse,
} from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ExportEntry, ExportedFile } from '../export/export-registry.js';
import type { HealthSources } from '../health/health-sources.js';
import type { JobRegistry, Progress } from '../jobs/job-registry.js';
import type { TempHold } from '../export/prepare-export.js';
import type { PathLocks } from '../locks/path-locks.js';
import type { Monitoring } from '../monitor/monitoring.js';
import type { Roots } from '../paths/roots.js';

/** What the RPC layer needs of the data path (TransferService in agent/src/transfer/ provides it). */
export interface DataPath {
  dataAddress(): string;
  openSend(req: OpenSendRequest): Promise<OpenSendResponse>;
  /** A ticket for one regular file outside the roots (`file`: a checked real path; `path`: for logs). */
  openImportSource(req: OpenSendRequest & { file: string }): Promise<OpenSendResponse>;
  /** `progress` gets the data bytes received of those the manifest lists (phase "receiving"). */
  receive(
    req: ReceiveRequest,
    signal: AbortSignal,
    progress?: (p: Progress) => void,
  ): Promise<ReceiveResponse>;
  /** A ticket for a file made only to be sent; `release` removes it after the send or at expiry. */
  openStagedFile(
    req: OpenSendRequest & { file: string; release: () => Promise<void> },
  ): Promise<OpenSendResponse>;
  /**
   * Pulls a ticket's tree into `temp` (a new name; `tempReal` its real path), checked file by file,
   * without renaming it anywhere: the caller does (ReceiveBackup).
   */
  pullInto(
    req: { ticket: string; dataAddress: string; sourceName: string; sparse: boolean },
    temp: string,
    tempReal: string,
    signal: AbortSignal,
    progress?: (p: Progress) => void,
  ): Promise<PulledTree>;
}

/** What pullInto received: the bytes, and each file's SHA-256 as checked on arrival. */
export interface PulledTree {
  kind: 'dir' | 'file' | 'symlink';
  bytes: number;
  files: number;
  fileDigests: ReadonlyArray<{ path: string; sha256: Buffer }>;
}

/** Hole-keeping same-host copy (copyLocal in agent/src/transfer/local-copy.ts). */
export type CopyLocal = (
  source: string,
  destination: string,
  opts: {
    sparse: boolean;
    signal?: AbortSignal;
    /** Bytes copied of the source's (phase "copying"), polled from the temporary copy. */
    progress?: ((p: Progress) => void) | undefined;
  },
) => Promise<{ bytes: number }>;

/** What ExportImage needs of the export listener (ExportService in agent/src/export/ provides it). */
export interface ImageExports {
  /** export.ttlSeconds: an export's life when the request leaves ttl_seconds at 0. */
  readonly defaultTtlSeconds: number;
  /** A temporary beside `entry` for a flattened copy, safe from the stale-temporary sweeps. */
  holdTemp(entry: string): TempHold;
  /** Serves `file` until `ttlSeconds` pass; the URL holds the secret token (log entry.id instead). */
  publish(file: ExportedFile, ttlSeconds: number): { url: string; entry: ExportEntry };
}

/** Everything a handler may use, built once by startAgent. Handlers know nothing of gRPC. */
export interface AgentContext {
  /** This node's OpenNebula hostname: every error message starts its "where" with it. */
  readonly name: string;
  readonly version: string;
  readonly roots: Roots;
  readonly locks: PathLocks;
  readonly dataPath: DataPath;
  readonly copyLocal: CopyLocal;
  /** libvirt connection URI for the live actions (agent config `libvirt.uri`). */
  readonly libvirtUri: string;
  /** Disk and datastore monitoring (agent/src/monitor/). */
  readonly monitoring: Monitoring;
  /** The export listener; absent when the config has no `export` section (EXPORT_DISABLED). */
  readonly exports?: ImageExports;
  /** Image registration: the upload directories (config imports.dirs) and the CAs https sources must chain to. */
  readonly imports: { readonly dirs: readonly string[]; readonly ca: ReadonlyArray<string | Buffer> };
  /** The calls running now (ListJobs, CancelJobs); adaptHandler registers each call. */
  readonly jobs: JobRegistry;
  /**
   * What Health reports: certificate, roots, libvirt, monitoring (agent/src/health/). startAgent
   * always sets it; a test that builds a context for other handlers may leave it out.
   */
  readonly health?: HealthSources;
}

/** Per-call context: cancellation reaches every tool, the logger carries the request id. */
export interface CallContext {
  readonly signal: AbortSignal;
  readonly log: Logger;
  /**
   * Reports how far a long call has got (bytes done, total, phase) for ListJobs and the
   * coordinator's progress view. Cheap: it only records the figures, so a per-chunk call is fine.
   * Absent when a test runs a handler on its own.
   */
  readonly progress?: (p: Progress) => void;
}

export type Handler<Req, Res> = (agent: AgentContext, req: Req, call: CallContext) => Promise<Res>;

/** "host01:/var/lib/one/datastores/0/42/disk.0": where something happened, as people read it. */
export function where(agent: AgentContext, onedPath: string): string {
  return `${agent.name}:${onedPath}`;
}
