import { chmod, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DIRECTORY_MODE } from './modes.js';

/**
 * `mkdir -p` that leaves every directory it creates at DIRECTORY_MODE. The agent's umask
 * (AGENT_UMASK) takes the group's write and the world's bits from everything it creates, files
 * and directories alike; directories get the world's read and search back here, after they exist,
 * so nothing is ever more open than its final mode. Returns the directories it created, outermost
 * first (empty when `path` was already there).
 */
export async function makeDirectory(path: string): Promise<string[]> {
  const first = await mkdir(path, { recursive: true, mode: DIRECTORY_MODE });
  if (first === undefined) return [];
  const created = [first];
  for (const part of relative(first, path)
    .split('/')
    .filter((p) => p !== '')) {
    created.push(join(created[created.length - 1] ?? first, part));
  }
  for (const dir of created) await chmod(dir, DIRECTORY_MODE);
  return created;
}

/** `mkdir` of one new directory (EEXIST if it is there) at DIRECTORY_MODE, as makeDirectory does. */
export async function makeNewDirectory(path: string): Promise<void> {
  await mkdir(path, { mode: DIRECTORY_MODE });
  await chmod(path, DIRECTORY_MODE);
}
