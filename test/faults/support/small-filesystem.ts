// A size-limited tmpfs standing for a destination host's filesystem in the fault suites: mounted on
// a new temporary directory, filled to a chosen free space with a ballast file, emptied again, and
// unmounted and removed by `remove` (called from afterAll, also when a test failed).
import { execFileSync } from 'node:child_process';
import { rmSync, statfsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOOL_TIMEOUT_MS = 30_000;
const run = (tool: string, args: string[]): void => {
  execFileSync(tool, args, { env: { ...process.env, LANG: 'C' }, timeout: TOOL_TIMEOUT_MS, stdio: 'pipe' });
};

export class SmallFilesystem {
  private constructor(readonly dir: string) {}

  static async mount(sizeMb: number, prefix: string): Promise<SmallFilesystem> {
    if (process.getuid?.() !== 0) throw new Error(`${prefix}: mounting a small tmpfs needs root`);
    const dir = await mkdtemp(join(tmpdir(), prefix));
    run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
    return new SmallFilesystem(dir);
  }

  /** Bytes a non-root writer could still allocate. */
  freeBytes(): number {
    const st = statfsSync(this.dir);
    return st.bavail * st.bsize;
  }

  /** Fills the filesystem with a ballast file until `leftBytes` are free (fallocate, no data written). */
  fillLeaving(leftBytes: number): void {
    this.makeRoom();
    const ballast = this.freeBytes() - leftBytes;
    if (ballast <= 0)
      throw new Error(`${this.dir}: only ${this.freeBytes()} bytes free, cannot leave ${leftBytes}`);
    run('fallocate', ['-l', String(ballast), join(this.dir, 'ballast')]);
  }

  /** Recovery: the ballast goes. */
  makeRoom(): void {
    rmSync(join(this.dir, 'ballast'), { force: true });
  }

  async remove(): Promise<void> {
    run('umount', [this.dir]);
    await rm(this.dir, { recursive: true, force: true });
  }
}
