// A slow disk for one process tree, without device-mapper (docs/reliability.md#a-slow-disk): an
// ext4 filesystem on a loop device, mounted `sync` so every write reaches the device before the
// write call returns, and a cgroup v1 blkio group whose write_bps_device rule on that loop device
// throttles the processes put in it (an agent, and the cp and qemu-img it starts). Buffered
// writeback would escape the rule (the flusher threads are not in the group); with `sync` the
// writer's own task submits every block, so the rule holds. `remove` undoes all of it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BLKIO = '/sys/fs/cgroup/blkio';
const TOOL_TIMEOUT_MS = 60_000;
const run = (tool: string, args: string[]): string =>
  execFileSync(tool, args, {
    env: { ...process.env, LANG: 'C' },
    timeout: TOOL_TIMEOUT_MS,
    encoding: 'utf8',
  });

export class SlowDisk {
  private loop = '';
  private mounted = false;
  private constructor(
    private readonly base: string,
    /** The mounted filesystem. */
    readonly dir: string,
    private readonly group: string,
  ) {}

  static async create(sizeMb: number, prefix: string): Promise<SlowDisk> {
    if (process.getuid?.() !== 0) throw new Error(`${prefix}: a loop device and a blkio cgroup need root`);
    if (!existsSync(join(BLKIO, 'blkio.throttle.write_bps_device')))
      throw new Error(`${BLKIO}: no cgroup v1 blkio throttling on this machine`);
    const base = await mkdtemp(join(tmpdir(), prefix));
    const disk = new SlowDisk(base, join(base, 'mnt'), join(BLKIO, `${prefix}${process.pid}`));
    try {
      const backing = join(base, 'backing');
      run('truncate', ['-s', `${sizeMb}M`, backing]);
      run('mkfs.ext4', ['-q', '-F', backing]);
      disk.loop = run('losetup', ['--find', '--show', backing]).trim();
      await mkdir(disk.dir);
      run('mount', ['-o', 'sync', disk.loop, disk.dir]);
      disk.mounted = true;
      await mkdir(disk.group);
    } catch (err) {
      await disk.remove();
      throw err;
    }
    return disk;
  }

  private device(): string {
    return run('lsblk', ['--nodeps', '--noheadings', '--output', 'MAJ:MIN', this.loop]).trim();
  }

  /** Writes by the group's processes to this disk go at most `bytesPerSecond`; 0 lifts the limit. */
  setWriteRate(bytesPerSecond: number): void {
    writeFileSync(
      join(this.group, 'blkio.throttle.write_bps_device'),
      `${this.device()} ${bytesPerSecond}\n`,
    );
  }

  /** Puts a running process (and what it starts from now on) in the throttled group. */
  addProcess(pid: number): void {
    writeFileSync(join(this.group, 'cgroup.procs'), `${pid}\n`);
  }

  async remove(): Promise<void> {
    if (existsSync(this.group)) {
      // Whatever is still in the group goes back to the root group: a group with tasks cannot go.
      for (const pid of readFileSync(join(this.group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(join(BLKIO, 'cgroup.procs'), `${pid}\n`);
        } catch {
          // It exited meanwhile.
        }
      }
      rmdirSync(this.group);
    }
    if (this.mounted) run('umount', [this.dir]);
    this.mounted = false;
    if (this.loop) run('losetup', ['--detach', this.loop]);
    this.loop = '';
    await rm(this.base, { recursive: true, force: true });
  }
}
