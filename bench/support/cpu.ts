/**
 * CPU accounting the benchmarks share (bench/transfer, bench/backup-ds; docs/benchmarks.md): the
 * CPU-seconds spent by this process and the children it has waited for (tar, ssh, cp, rsync,
 * restic, qemu-img), plus long-lived helpers named by PID (the benchmark's sshd with its finished
 * sessions, the ssh ControlMaster, our agents) and their descendants, read from /proc/<pid>/stat.
 * A run's figure is the difference of two readings, one before it and one after.
 */
import { readdir, readFile } from 'node:fs/promises';

/** USER_HZ: the unit of /proc/<pid>/stat's times on Linux. */
const CLOCK_TICKS = 100;

/** The fields of /proc/<pid>/stat after the command name (which may hold blanks); [] when gone. */
async function statFields(pid: number | 'self'): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return text === '' ? [] : text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime + cutime + cstime (fields 14-17; index 0 is field 3), in seconds. */
function cpuSeconds(fields: readonly string[]): number {
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0) / CLOCK_TICKS;
}

/**
 * CPU-seconds of this process, the children it reaped, and every process in the trees of `pids`:
 * a live descendant counts with its own reaped children (sshd's per-connection processes outlive a
 * command run over the ControlMaster, so its rsync is not yet in sshd's own figures).
 */
export async function cpuTotal(pids: readonly number[]): Promise<number> {
  const all = await readdir('/proc').then((names) => names.filter((n) => /^\d+$/.test(n)).map(Number));
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const pid of all) {
    const f = await statFields(pid);
    if (f.length === 0) continue;
    parent.set(pid, Number(f[1]));
    cpu.set(pid, cpuSeconds(f));
  }
  const roots = new Set(pids);
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (roots.has(p)) return true;
      p = parent.get(p);
    }
    return false;
  };
  let total = cpuSeconds(await statFields('self'));
  for (const [pid, secs] of cpu) if (inTree(pid) && pid !== process.pid) total += secs;
  return total;
}
