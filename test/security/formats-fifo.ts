import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../common/src/tools/run-tool.js';

/** mkfifo(1): a file that blocks whoever opens it for reading (it proves nothing opened it). */
export async function mkfifo(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await runTool('mkfifo', [path]);
}
