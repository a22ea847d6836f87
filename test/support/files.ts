import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readdirSync, readlinkSync, watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

/** Bytes allocated on disk (st_blocks × 512): what sparseness is about. */
export function allocatedBytes(file: string): number {
  return lstatSync(file).blocks * 512;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** qemu-img compare: true when the guest-visible contents are identical. */
export async function imagesIdentical(a: string, b: string): Promise<boolean> {
  try {
    const r = await runTool('qemu-img', ['compare', '-U', a, b]);
    return /Images are identical/.test(r.stdout);
  } catch {
    return false;
  }
}

export async function imageInfo(
  file: string,
): Promise<{ format: string; 'virtual-size': number; 'backing-filename'?: string }> {
  const r = await runTool('qemu-img', ['info', '-U', '--output=json', file]);
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
 * with its name, from a directory watch rather than polling. `close()` stops waiting (the watch is
 * closed either way once an entry is found).
 */
export function entryAppears(
  dir: string,
  matches: (name: string) => boolean,
): { appeared: Promise<string>; close(): void } {
  let close = (): void => {};
  const appeared = new Promise<string>((resolve, reject) => {
    const check = (): void =>
      void readdir(dir).then((names) => {
        const found = names.find(matches);
        if (found !== undefined) {
          close();
          resolve(found);
        }
      }, reject);
    const watcher = watch(dir, check);
    close = () => watcher.close();
    check();
  });
  return { appeared, close: () => close() };
}

/**
 * Resolves once `path` exists, waiting for each missing component in turn with entryAppears (a
 * directory watch, no polling). Its parent chain must eventually appear too.
 */
export async function pathAppears(path: string): Promise<void> {
  const missing: string[] = [];
  let dir = path;
  while (!existsSync(dir)) {
    missing.unshift(basename(dir));
    dir = dirname(dir);
  }
  for (const name of missing) {
    await entryAppears(dir, (n) => n === name).appeared;
    dir = join(dir, name);
  }
}

/** Resolves at the first change to `file` (data written, or its metadata changed): a file watch. */
export function firstChange(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(file, () => {
      watcher.close();
      resolve();
    });
    watcher.on('error', reject);
  });
}

/**
 * True once `path` exists while `running` (the call expected to make it) is still under way; false
 * when that call settles first. No timeout of its own: the test's bounds it.
 */
export function appearsWhile(path: string, running: Promise<unknown>): Promise<boolean> {
  const ended = running.then(
    () => false,
    () => false,
  );
  return Promise.race([pathAppears(path).then(() => true), ended]);
}

/**
 * Resolves once `holds()` is true, checking it again at each change to `file` (a log a daemon
 * appends to, say): a file watch, no polling.
 */
export function fileShows(file: string, holds: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(file);
    const check = (): void => {
      if (!holds()) return;
      watcher.close();
      resolve();
    };
    watcher.on('change', check);
    watcher.on('error', (err) => {
      watcher.close();
      reject(err);
    });
    check();
  });
}
