import { createHash, randomBytes } from 'node:crypto';
import { EXPORT_TOKEN_BYTES, EXPORT_TOKEN_PATTERN } from '../../../common/src/export-tokens.js';
import type { FileIdentity } from '../transfer/verified-open.js';

/** What one export serves: a file as it was when its MD5 was taken, and how the export ends. */
export interface ExportedFile {
  /** Real path of the served file (no symlink in any component). */
  readonly path: string;
  /** Device and inode when it was hashed: another file at the same path is never served. */
  readonly identity: FileIdentity;
  /** Bytes served. */
  readonly size: number;
  /** Modification time (ns) when it was hashed: a file written in place since is not served. */
  readonly mtimeNs: bigint;
  /** MD5 of the served bytes, 32 hex digits (also the ETag). */
  readonly md5: string;
  /** The image as oned names it, for the log. */
  readonly source: string;
  /** The URL's last segment (a download name; the server does not check it). */
  readonly name: string;
  /** Run once when the export ends (expiry, shutdown): removes a flattened copy. */
  readonly dispose?: () => Promise<void>;
}

export interface ExportEntry extends ExportedFile {
  /** The token's public name: the start of its SHA-256, what logs show. Never the token. */
  readonly id: string;
  /** Clock time (ms) from which the token is refused. */
  readonly expiresAt: number;
}

export interface ExportRegistryOptions {
  /** Clock in ms since the epoch; tests move it to expire tokens. */
  now?: () => number;
  /** A dispose that failed (the entry is gone all the same). */
  onDisposeError?: (entry: ExportEntry, err: unknown) => void;
}

/** Hex digits of a token's SHA-256 that name it in logs: enough to tell exports apart. */
const ID_HEX_DIGITS = 12;

/**
 * The live exports, by token. The map is keyed by the token's SHA-256, so finding an entry never
 * compares the secret itself byte by byte (no timing leak), and what a log shows (`id`) says
 * nothing about the token. Expired entries are removed, and disposed, by `sweep`: the export
 * server sweeps before every lookup and on a timer that never keeps the process alive.
 */
export class ExportRegistry {
  private readonly entries = new Map<string, ExportEntry>();
  private readonly now: () => number;

  constructor(private readonly opts: ExportRegistryOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** Registers `file` for `ttlSeconds` and returns the new token (the caller puts it in the URL). */
  add(file: ExportedFile, ttlSeconds: number): { token: string; entry: ExportEntry } {
    const token = randomBytes(EXPORT_TOKEN_BYTES).toString('base64url');
    const key = keyOf(token);
    const entry: ExportEntry = {
      ...file,
      id: key.slice(0, ID_HEX_DIGITS),
      expiresAt: this.now() + ttlSeconds * 1000,
    };
    this.entries.set(key, entry);
    return { token, entry };
  }

  /** The live entry `token` names; undefined for a malformed, unknown or expired token alike. */
  find(token: string): ExportEntry | undefined {
    if (!EXPORT_TOKEN_PATTERN.test(token)) return undefined;
    const entry = this.entries.get(keyOf(token));
    return entry !== undefined && this.now() < entry.expiresAt ? entry : undefined;
  }

  /** Removes every expired entry and waits for their disposal. Returns how many ended. */
  async sweep(): Promise<number> {
    const now = this.now();
    return this.end([...this.entries].filter(([, e]) => now >= e.expiresAt));
  }

  /** Ends every export (shutdown): their URLs stop working and their flattened copies go. */
  async close(): Promise<void> {
    await this.end([...this.entries]);
  }

  /** Number of live entries, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  private async end(ending: Array<[string, ExportEntry]>): Promise<number> {
    // Out of the map first, synchronously: a concurrent sweep never disposes an entry twice.
    for (const [key] of ending) this.entries.delete(key);
    await Promise.all(
      ending.map(async ([, e]) => {
        try {
          await e.dispose?.();
        } catch (err) {
          this.opts.onDisposeError?.(e, err);
        }
      }),
    );
    return ending.length;
  }
}

function keyOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
