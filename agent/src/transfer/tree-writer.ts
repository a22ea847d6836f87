import { createHash, type Hash } from 'node:crypto';
import { chmod, mkdir, open, symlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../../common/src/errors.js';
import { DIRECTORY_MODE, DISK_FILE_MODE } from '../files/modes.js';
import { runningDigest, type DigestAlgorithm, type RunningDigest } from './digest-algorithms.js';
import { rootKind, type EntryKind, type Manifest, type ManifestEntry } from './manifest.js';
import { fsyncPath } from '../../../common/src/files/atomic-file.js';
import { fillHoles, writeFully } from './write-fully.js';
import { descriptorPath, openVerifiedDirectory, type FileIdentity } from './verified-open.js';
import { ProtocolError } from './wire.js';
import { MIB } from '../../../common/src/units.js';

/**
 * Bytes gathered (as socket chunks, not copied) before one pwritev: few, large writes. The
 * receiver hashes on its main thread, straight from the socket's chunks: copying them into memory
 * a worker could read (or transferring them) costs as much CPU as hashing them here.
 */
const BATCH_BYTES = MIB;
/** Below IOV_MAX (1024) with room to spare. */
const BATCH_PARTS = 512;
/** Received bytes waiting for the disk before we stop reading the socket, and when we resume. */
const PAUSE_AT_BYTES = 32 * MIB;
const RESUME_AT_BYTES = 8 * MIB;
/**
 * pwritevs in flight per file. Two keep the disk busy; more only queue on the inode lock and take
 * threadpool threads the periodic fdatasync needs.
 */
const WRITES_IN_FLIGHT = 2;
/**
 * fdatasync after this many bytes written (one at a time, in the background). With 20+ GiB of RAM
 * the kernel starts writeback only at gigabytes of dirty pages, so without this a 2 GiB image is
 * all written back by the final fsync, after the network is done; with it writeback runs alongside
 * receiving and the final fsync finds little left (measured: 2 GiB written and fsynced in 9.2 s
 * without, 4.9 s with).
 */
const SYNC_EVERY_BYTES = 32 * MIB;
/**
 * New directories and files stay private until complete; then they get the agent's modes
 * (DISK_FILE_MODE, DIRECTORY_MODE), never the sender's: a setuid or world-writable file on one
 * host does not arrive so on another.
 */
const WORK_DIR_MODE = 0o700;
const WORK_FILE_MODE = 0o600;
/** What a hole reads as, fed to a file's content hash. */
const ZEROS = Buffer.alloc(MIB);

export interface TreeWriterOptions {
  sparse: boolean;
  /** The real path `root` must turn out to be once created (root itself may be a descriptor path). */
  rootReal: string;
  /** Called with true when too much waits for the disk (pause the socket), false to resume. */
  onPressure: (tooMuch: boolean) => void;
  /** An asynchronous write or sync failed (ENOSPC, EIO...): the transfer must stop. */
  onFailure: (err: Error) => void;
  /**
   * Also hash each file's whole content (fileDigests), holes as zeros: a second hash over data
   * and holes for a file that has holes, or for every file when the data stream's digest is not
   * SHA-256, so only when asked (ReceiveBackup writes SHA256SUMS).
   */
  contentDigests?: boolean;
  /** The digest the sender sends for each file's data stream (default SHA-256). */
  digest?: DigestAlgorithm;
}

interface Write {
  parts: Buffer[];
  bytes: number;
  at: number;
}

interface OpenFile {
  entry: ManifestEntry;
  handle: Promise<FileHandle>;
  queue: Write[];
  inFlight: number;
  sinceSync: number;
  syncing: Promise<void> | undefined;
  error: Error | undefined;
  idle: (() => void)[];
}

/**
 * Builds what a manifest describes under `root` (a fresh temporary path) from the data stream:
 * directories and symlinks first, then each file created at its full size, its data extents
 * written at their offsets (so holes stay holes), hashed as they arrive and flushed to disk as it
 * goes. It checks every byte against the manifest and every file's digest against the sender's;
 * it never decides on its own to rename anything into place.
 */
export class TreeWriter {
  readonly digests: Buffer[] = [];
  /**
   * Each file's path (relative to the root, as the manifest names it) with the SHA-256 of its
   * whole content (holes read as zeros, as `sha256sum` reads the file), computed from the checked
   * data stream and the manifest's layout: what a backup's SHA256SUMS is written from. Filled
   * only with `contentDigests`.
   */
  readonly fileDigests: Array<{ path: string; sha256: Buffer }> = [];
  bytes = 0;
  private readonly files: ManifestEntry[];
  private readonly ready: Promise<void>;
  private fileIndex = 0;
  private extentIndex = 0;
  private extentDone = 0;
  private readonly check: DigestAlgorithm;
  private hash: RunningDigest;
  /**
   * The current file's whole-content SHA-256, when it has holes or `hash` is not SHA-256 (otherwise
   * its data stream is its content and `hash` serves both), and how many bytes it has taken so far.
   */
  private contentHash: Hash | undefined;
  private contentAt = 0;
  private current: OpenFile | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchAt = 0;
  private waitingBytes = 0;
  private paused = false;
  private readonly finishes: Promise<void>[] = [];
  private readonly handles = new Set<Promise<FileHandle>>();
  private readonly busy = new Set<OpenFile>();
  /** Where entries are created: `root`, then (a directory root) the held root's descriptor path. */
  private base: string;
  private rootDir: FileHandle | undefined;
  private created: FileIdentity | undefined;

  constructor(
    private readonly root: string,
    private readonly manifest: Manifest,
    private readonly opts: TreeWriterOptions,
  ) {
    this.files = manifest.entries.filter((e) => e.kind === 'file');
    this.check = opts.digest ?? 'sha256';
    this.hash = runningDigest(this.check);
    this.base = root;
    this.ready = this.skeleton();
    this.ready.catch((err: Error) => this.opts.onFailure(err));
  }

  get kind(): EntryKind {
    return rootKind(this.manifest);
  }

  get fileCount(): number {
    return this.files.length;
  }

  /**
   * Device and inode of the root this writer created: the caller checks the temporary is still it
   * before renaming it into place (nothing swapped in under the temporary name gets renamed).
   */
  get rootIdentity(): FileIdentity | undefined {
    return this.created;
  }

  /**
   * Part of the data stream, in order. Synchronous: hashing and bookkeeping; writes are queued.
   * Keeps references to `chunk` until written: the caller must not reuse its memory.
   */
  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const file = this.openCurrent();
      const extent = file.entry.extents?.[this.extentIndex];
      if (!extent) throw new ProtocolError(`more data than the manifest lists for "${file.entry.path}"`);
      const [offset, length] = extent;
      if (this.batchBytes === 0) this.batchAt = offset + this.extentDone;
      const take = Math.min(length - this.extentDone, chunk.length - pos);
      const part = pos === 0 && take === chunk.length ? chunk : chunk.subarray(pos, pos + take);
      this.hash.update(part);
      if (this.contentHash) {
        this.zerosUpTo(offset + this.extentDone);
        this.contentHash.update(part);
        this.contentAt += take;
      }
      this.batch.push(part);
      this.batchBytes += take;
      this.bytes += take;
      this.extentDone += take;
      pos += take;
      const extentEnds = this.extentDone === length;
      if (extentEnds || this.batchBytes >= BATCH_BYTES || this.batch.length >= BATCH_PARTS) this.flush(file);
      if (extentEnds) {
        this.extentIndex += 1;
        this.extentDone = 0;
      }
    }
  }

  /** The sender's digest for the current file: compare, then finish the file in the background. */
  fileDone(senderDigest: Buffer): void {
    const file = this.openCurrent();
    if (this.extentIndex !== (file.entry.extents?.length ?? 0)) {
      throw new ProtocolError(`"${file.entry.path}" ended before all its data arrived`);
    }
    const digest = this.hash.digest();
    if (!digest.equals(senderDigest)) {
      throw new StorageError(
        'CHECKSUM_MISMATCH',
        `checksum mismatch on "${file.entry.path || '.'}" (${this.check} of the data differs from the sender's)`,
      );
    }
    this.digests.push(digest);
    if (this.contentHash) this.zerosUpTo(file.entry.size);
    if (this.opts.contentDigests)
      this.fileDigests.push({ path: file.entry.path, sha256: this.contentHash?.digest() ?? digest });
    this.contentHash = undefined;
    this.contentAt = 0;
    const finishing = this.finishFile(file);
    finishing.catch((err: Error) => this.opts.onFailure(err));
    this.finishes.push(finishing);
    this.current = undefined;
    this.fileIndex += 1;
    this.extentIndex = 0;
    this.extentDone = 0;
    this.hash = runningDigest(this.check);
  }

  /** After the sender's END: wait for every write and fsync, then give the directories their mode. */
  async complete(): Promise<void> {
    if (this.fileIndex !== this.files.length)
      throw new ProtocolError('the sender ended before sending every file');
    await this.ready;
    await Promise.all(this.finishes);
    const dirs = this.manifest.entries.filter((e) => e.kind === 'dir').reverse();
    for (const d of dirs) {
      const path = this.pathOf(d);
      await chmod(path, DIRECTORY_MODE);
      await utimes(path, d.mtimeMs / 1000, d.mtimeMs / 1000);
      await fsyncPath(path);
    }
    await this.rootDir?.close();
    this.rootDir = undefined;
  }

  /** After a failure: wait for queued work to stop and close every file, so the caller can remove root. */
  async abandon(): Promise<void> {
    // Queued writes are skipped from now on; those already running finish.
    for (const f of this.busy) f.error ??= new Error('transfer abandoned');
    await Promise.allSettled([this.ready, ...this.finishes, ...[...this.busy].map((f) => this.drained(f))]);
    await Promise.allSettled([...this.handles].map(async (h) => (await h).close()));
    await this.rootDir?.close().catch(() => undefined);
    this.rootDir = undefined;
  }

  private pathOf(e: ManifestEntry): string {
    return e.path === '' ? this.base : join(this.base, e.path);
  }

  private async skeleton(): Promise<void> {
    for (const e of this.manifest.entries) {
      if (e.kind === 'dir') {
        await mkdir(this.pathOf(e), WORK_DIR_MODE);
        if (e.path === '') await this.holdRoot();
      } else if (e.kind === 'symlink') await symlink(e.link as string, this.pathOf(e));
    }
  }

  /**
   * Opens the new root directory (O_NOFOLLOW, real path checked) and creates everything else
   * through that descriptor: a symlink swapped in for the temporary name cannot redirect the tree.
   */
  private async holdRoot(): Promise<void> {
    this.rootDir = await openVerifiedDirectory(this.root, 'temporary directory', this.opts.rootReal);
    const st = await this.rootDir.stat({ bigint: true });
    this.created = { dev: st.dev, ino: st.ino };
    this.base = descriptorPath(this.rootDir);
  }

  /** Feeds the content hash the zeros of a hole, up to `offset` of the current file. */
  private zerosUpTo(offset: number): void {
    const hash = this.contentHash as Hash;
    while (this.contentAt < offset) {
      const n = Math.min(offset - this.contentAt, ZEROS.length);
      hash.update(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n));
      this.contentAt += n;
    }
  }

  private openCurrent(): OpenFile {
    if (this.current) return this.current;
    const entry = this.files[this.fileIndex];
    if (!entry) throw new ProtocolError('data after the last file of the manifest');
    const extents = entry.extents ?? [];
    const whole =
      entry.size === 0 || (extents.length === 1 && extents[0]?.[0] === 0 && extents[0][1] === entry.size);
    const streamIsContent = whole && this.check === 'sha256';
    this.contentHash = streamIsContent || !this.opts.contentDigests ? undefined : createHash('sha256');
    this.contentAt = 0;
    const handle = this.ready.then(async () => {
      // 'wx': the temporary tree is new; anything already there is not ours to overwrite.
      const fh = await open(this.pathOf(entry), 'wx', WORK_FILE_MODE);
      if (entry.path === '') {
        const st = await fh.stat({ bigint: true });
        this.created = { dev: st.dev, ino: st.ino };
      }
      await fh.truncate(entry.size);
      return fh;
    });
    handle.catch(() => undefined);
    this.handles.add(handle);
    this.current = {
      entry,
      handle,
      queue: [],
      inFlight: 0,
      sinceSync: 0,
      syncing: undefined,
      error: undefined,
      idle: [],
    };
    return this.current;
  }

  private flush(file: OpenFile): void {
    if (this.batchBytes === 0) return;
    file.queue.push({ parts: this.batch, bytes: this.batchBytes, at: this.batchAt });
    this.account(this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    this.busy.add(file);
    this.pump(file);
  }

  private pump(file: OpenFile): void {
    while (file.inFlight < WRITES_IN_FLIGHT && file.queue.length > 0) {
      const w = file.queue.shift() as Write;
      file.inFlight += 1;
      file.handle
        .then(async (fh) => {
          if (file.error) return;
          await writeFully(fh, w.parts, w.at);
          file.sinceSync += w.bytes;
          if (file.sinceSync >= SYNC_EVERY_BYTES && !file.syncing) {
            file.sinceSync = 0;
            file.syncing = fh.datasync().finally(() => (file.syncing = undefined));
            file.syncing.catch((err: Error) => this.fileFailed(file, err));
          }
        })
        .catch((err: Error) => this.fileFailed(file, err))
        .finally(() => {
          file.inFlight -= 1;
          this.account(-w.bytes);
          this.pump(file);
        });
    }
    if (file.inFlight === 0 && file.queue.length === 0) {
      this.busy.delete(file);
      for (const wake of file.idle.splice(0)) wake();
    }
  }

  private fileFailed(file: OpenFile, err: Error): void {
    file.error ??= err;
    this.opts.onFailure(err);
  }

  /** Resolves when every write queued for `file` has finished; rejects with the first failure. */
  private async drained(file: OpenFile): Promise<void> {
    if (file.inFlight > 0 || file.queue.length > 0)
      await new Promise<void>((resolve) => file.idle.push(resolve));
    await file.syncing?.catch(() => undefined);
    if (file.error) throw file.error;
  }

  private account(delta: number): void {
    this.waitingBytes += delta;
    if (!this.paused && this.waitingBytes >= PAUSE_AT_BYTES) {
      this.paused = true;
      this.opts.onPressure(true);
    } else if (this.paused && this.waitingBytes <= RESUME_AT_BYTES) {
      this.paused = false;
      this.opts.onPressure(false);
    }
  }

  private async finishFile(file: OpenFile): Promise<void> {
    const fh = await file.handle;
    try {
      await this.drained(file);
      const { entry } = file;
      if (!this.opts.sparse) await fillHoles(fh, entry.size, entry.extents ?? []);
      await fh.chmod(DISK_FILE_MODE);
      await fh.utimes(entry.mtimeMs / 1000, entry.mtimeMs / 1000);
      await fh.sync();
    } finally {
      this.handles.delete(file.handle);
      await fh.close();
    }
  }
}
