import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';
import type { ImageFormat } from '../../agent/src/qemu/qemu-img.js';
import { watchCounted } from './watchers.js';

/** Bytes allocated on disk (st_blocks × 512): what sparseness is about. */
export function allocatedBytes(file: string): number {
  return lstatSync(file).blocks * 512;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * qemu-img compare with both formats pinned (`-f` for `a`, `-F` for `b`), as every qemu-img call is
 * (docs/security.md#image-formats-are-pinned-backing-chains-are-checked-before-they-are-opened):
 * true when the guest-visible contents are identical; false when they differ or either image does
 * not open as its format.
 */
export async function imagesIdentical(
  a: string,
  aFormat: ImageFormat,
  b: string,
  bFormat: ImageFormat,
): Promise<boolean> {
  try {
    const r = await runTool('qemu-img', ['compare', '-U', '-f', aFormat, '-F', bFormat, a, b]);
    return /Images are identical/.test(r.stdout);
  } catch {
    return false;
  }
}

/** qemu-img info of `file` opened as `format` (pinned with `-f`): it fails when it is not one. */
export async function imageInfo(
  file: string,
  format: ImageFormat,
): Promise<{ format: string; 'virtual-size': number; 'backing-filename'?: string }> {
  const r = await runTool('qemu-img', ['info', '-U', '-f', format, '--output=json', file]);
  return JSON.parse(r.stdout) as { format: string; 'virtual-size': number };
}

/**
 * A directory tree as sorted lines: "path" for files (with size), "path/" for directories,
 * "path -> target" for symlinks. Compares layouts in one assertion.
 */
export function layout(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/`);
        walk(p);
      } else out.push(rel);
    }
  };
  walk(dir);
  return out;
}

/** stderr lines that are not oned log lines (INFO:/ERROR:/WARN:/DEBUG:): the error text oned shows. */
export function humanLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !/^(ERROR|INFO|WARN|DEBUG):\s/.test(l));
}

/**
 * Waits for an entry of `dir` whose name `matches` (one already there counts): `appeared` resolves
 * with its name, from a directory watch rather than polling. It rejects when `dir` cannot be read
 * or watched, and with the signal's reason when `signal` aborts (a caller's time bound, say).
 * `close()` stops waiting without settling `appeared`. The watch is closed on every one of these.
 */
export function entryAppears(
  dir: string,
  matches: (name: string) => boolean,
  signal?: AbortSignal,
): { appeared: Promise<string>; close(): void } {
  let close = (): void => {};
  const appeared = new Promise<string>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const watcher = watchCounted(dir, () => check());
    const onAbort = (): void => settle(() => reject(signal?.reason as Error));
    close = () => {
      watcher.close();
      signal?.removeEventListener('abort', onAbort);
    };
    let settled = false;
    const settle = (how: () => void): void => {
      if (settled) return;
      settled = true;
      close();
      how();
    };
    const check = (): void =>
      void readdir(dir).then(
        (names) => {
          const found = names.find(matches);
          if (found !== undefined) settle(() => resolve(found));
        },
        (err: Error) => settle(() => reject(err)),
      );
    watcher.on('error', (err) => settle(() => reject(err)));
    signal?.addEventListener('abort', onAbort, { once: true });
    check();
  });
  return { appeared, close: () => close() };
}

/**
 * Resolves once `path` exists, waiting for each missing component in turn with entryAppears (a
 * directory watch, no polling). Its parent chain must eventually appear too. `signal` stops the
 * wait (rejecting with its reason) and closes the watch.
 */
export async function pathAppears(path: string, signal?: AbortSignal): Promise<void> {
  const missing: string[] = [];
  let dir = path;
  while (!existsSync(dir)) {
    missing.unshift(basename(dir));
    dir = dirname(dir);
  }
  for (const name of missing) {
    await entryAppears(dir, (n) => n === name, signal).appeared;
    dir = join(dir, name);
  }
}

/**
 * Resolves at the first change to `file` (data written, or its metadata changed): a file watch,
 * closed whether it resolves, fails or `signal` aborts it (rejecting with the signal's reason).
 */
export function firstChange(file: string, signal?: AbortSignal): Promise<void> {
  return watchUntil(file, () => true, signal, false);
}

/**
 * True once `path` exists while `running` (the call expected to make it) is still under way; false
 * when that call settles first, and then the watch for `path` is closed too. No timeout of its
 * own: the test's bounds it.
 */
export async function appearsWhile(path: string, running: Promise<unknown>): Promise<boolean> {
  const done = new AbortController();
  const ended = running.then(
    () => false,
    () => false,
  );
  void ended.then(() => done.abort(new Error(`the call ended before ${path} appeared`)));
  const appeared = pathAppears(path, done.signal).then(
    () => true,
    (err: unknown) => {
      if (done.signal.aborted) return false;
      throw err;
    },
  );
  try {
    return await Promise.race([appeared, ended]);
  } finally {
    done.abort(new Error(`stopped watching for ${path}`));
  }
}

/**
 * Resolves once `holds()` is true, checking it again at each change to `file` (a log a daemon
 * appends to, say): a file watch, no polling, closed whether it resolves, fails or `signal`
 * aborts it (rejecting with the signal's reason).
 */
export function fileShows(file: string, holds: () => boolean, signal?: AbortSignal): Promise<void> {
  return watchUntil(file, holds, signal, true);
}

/**
 * Resolves once `path` no longer exists (at once when it is already gone), from a watch of its
 * parent directory: no polling. `signal` bounds the wait (rejecting with its reason).
 */
export function pathGone(path: string, signal?: AbortSignal): Promise<void> {
  return fileShows(dirname(path), () => !existsSync(path), signal);
}

/** Watches `file` until `holds()` at a change (or at once, with `checkFirst`); see fileShows. */
function watchUntil(
  file: string,
  holds: () => boolean,
  signal: AbortSignal | undefined,
  checkFirst: boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const watcher = watchCounted(file);
    const onAbort = (): void => settle(() => reject(signal?.reason as Error));
    let settled = false;
    const settle = (how: () => void): void => {
      if (settled) return;
      settled = true;
      watcher.close();
      signal?.removeEventListener('abort', onAbort);
      how();
    };
    const check = (): void => {
      if (holds()) settle(resolve);
    };
    watcher.on('change', check);
    watcher.on('error', (err) => settle(() => reject(err)));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (checkFirst) check();
  });
}
