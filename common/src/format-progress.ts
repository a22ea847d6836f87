// How progress reads for people: in the VM log (the coordinator's INFO lines) and in `one-storage
// jobs`. Binary units, as qemu-img and OpenNebula's sizes (MiB) use.
import { GIB, KIB, MIB } from './units.js';

/** "512 B", "3.0 KiB", "12.5 MiB", "1.50 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes >= GIB) return `${(bytes / GIB).toFixed(2)} GiB`;
  if (bytes >= MIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  if (bytes >= KIB) return `${(bytes / KIB).toFixed(1)} KiB`;
  return `${Math.max(0, Math.round(bytes))} B`;
}

/** "45 s", "3 min 20 s", "2 h 05 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export interface ProgressFigures {
  done: number;
  /** 0 while unknown. */
  total: number;
  /** Bytes per second; 0 while unknown. */
  rate: number;
}

/** Milliseconds left at the current rate; undefined while the total or the rate is unknown. */
export function etaMs(p: ProgressFigures): number | undefined {
  if (p.total <= 0 || p.rate <= 0) return undefined;
  return (Math.max(0, p.total - p.done) / p.rate) * 1000;
}

/** Percent done (0-100, one decimal), undefined while the total is unknown. */
export function percentDone(p: ProgressFigures): number | undefined {
  if (p.total <= 0) return undefined;
  return Math.min(100, Math.round((p.done / p.total) * 1000) / 10);
}

/** "1.00 GiB of 4.00 GiB (25%), 85.0 MiB/s, about 36 s left"; parts unknown are left out. */
export function describeProgress(p: ProgressFigures): string {
  const pct = percentDone(p);
  const eta = etaMs(p);
  return [
    p.total > 0 ? `${formatBytes(p.done)} of ${formatBytes(p.total)} (${pct}%)` : formatBytes(p.done),
    p.rate > 0 ? `${formatBytes(p.rate)}/s` : undefined,
    eta === undefined ? undefined : `about ${formatDuration(eta)} left`,
  ]
    .filter((part) => part !== undefined)
    .join(', ');
}
